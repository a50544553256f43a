#include "kube/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/b64.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/map.h"
#include "util/yamldoc.h"

#define KC_MAX_DEPTH    32u
#define KC_TOKEN_MAXAGE 60 /* seconds between token file re-reads, changed or not */

/* One parsed kubeconfig file of a (possibly merged) load. */
typedef struct kc_file {
    char *path;
    char *dir; /* anchors the file's relative paths */
    opyaml_doc doc;
} kc_file;

/* A named cluster, user or context: the first definition of its name. */
typedef struct kc_entry {
    const kc_file *f;
    const opyaml_node *item; /* the list item */
    const opyaml_node *body; /* item's cluster/user/context map, or NULL */
    const opyaml_node *at;   /* where to point for a missing field: the body's key */
    size_t idx;
} kc_entry;

enum { KC_CLUSTERS, KC_USERS, KC_CONTEXTS, KC_NKINDS };
static const char *const kc_list[KC_NKINDS] = {"clusters", "users", "contexts"};
static const char *const kc_inner[KC_NKINDS] = {"cluster", "user", "context"};

typedef struct kc_set {
    const char *label; /* names the whole load in errors that belong to no one file */
    opmap names[KC_NKINDS];
    const char *current;
    const kc_file *current_file;
    const opyaml_node *current_node;
} kc_set;

/* "kubeconfig 'file': path (line N): message". */
static int kc_err(operr *err, int code, const char *file, const char *path, const opyaml_node *at,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int kc_err(operr *err, int code, const char *file, const char *path, const opyaml_node *at,
                  const char *fmt, ...)
{
    char msg[OPERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path && at)
        return operr_set(err, code, "kubeconfig '%s': %s (line %d): %s", file, path, at->line, msg);
    if (path)
        return operr_set(err, code, "kubeconfig '%s': %s: %s", file, path, msg);
    if (at)
        return operr_set(err, code, "kubeconfig '%s': line %d: %s", file, at->line, msg);
    return operr_set(err, code, "kubeconfig '%s': %s", file, msg);
}

void kcfg_init(kcfg *c)
{
    memset(c, 0, sizeof *c);
}

void kcfg_release(kcfg *c)
{
    free(c->source);
    free(c->context);
    free(c->server);
    free(c->ns);
    free(c->ca_file);
    free(c->ca_data);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_data);
    free(c->key_data);
    free(c->token);
    free(c->token_file);
    free(c->tls_server_name);
    free(c->token_cached);
    kcfg_init(c);
}

/* --- small pure helpers ------------------------------------------------------------------ */

/* Read a whole file of at most max bytes. Returns 0 or a negative errno (-E2BIG
 * past the cap, -EISDIR for a directory). */
static int read_capped(const char *path, size_t max, opbuf *out)
{
    int rc = 0;
    opbuf_init(out, max);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    for (;;) {
        char chunk[16384];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        rc = opbuf_append(out, chunk, (size_t)n);
        if (rc)
            goto out;
    }
    if (!out->data)
        rc = opbuf_append(out, "", 0);
out:
    close(fd);
    if (rc)
        opbuf_release(out);
    return rc;
}

static char *path_join(const char *dir, const char *p)
{
    opbuf b;
    opbuf_init(&b, 0);
    int rc = p[0] == '/' || !dir || !*dir ? opbuf_puts(&b, p) : opbuf_printf(&b, "%s/%s", dir, p);
    return rc ? NULL : opbuf_detach(&b, NULL);
}

/* The directory of a file, made absolute so relative paths in the kubeconfig
 * still work after the process changes directory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup("");
    else if (slash == path)
        return strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir || path[0] == '/')
        return dir;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return *dir ? dir : (free(dir), strdup("."));
    char *abs = *dir ? path_join(cwd, dir) : strdup(cwd);
    free(dir);
    return abs;
}

/* "https://host[:port][/prefix]" without trailing slashes; NULL with *why set
 * when the URL is not one we can talk to. */
static char *server_normalize(const char *in, const char **why)
{
    size_t skip;
    if (strncasecmp(in, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(in, "http://", 7) == 0)
        skip = 7;
    else {
        *why = "must start with https:// or http://";
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            *why = "contains a space or control character";
            return NULL;
        }
        if (*p == '?' || *p == '#') {
            *why = "must not carry a query or fragment";
            return NULL;
        }
    }
    if (in[skip] == '\0' || in[skip] == '/' || in[skip] == ':') {
        *why = "has no host";
        return NULL;
    }
    size_t len = strlen(in);
    while (len > skip && in[len - 1] == '/')
        len--;
    char *s = strndup(in, len);
    if (!s) {
        *why = "out of memory";
        return NULL;
    }
    for (size_t i = 0; i < skip; i++) /* the scheme in lower case */
        s[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    return s;
}

/* RFC 1123 label, as Kubernetes requires of namespace names. */
static int dns_label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i != 0 && i != n - 1))
            return 0;
    }
    return 1;
}

/* A bearer token goes into an HTTP header: visible ASCII only. */
static const char *token_check(const char *t, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > KCFG_MAX_TOKEN)
        return "is longer than 64 KiB";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return "contains whitespace or a non-printable byte";
    return NULL;
}

/* Read a token file: trimmed, checked. On failure *why is set (static or
 * strerror text). */
static int token_read(const char *path, char **out, const char **why)
{
    opbuf b;
    int rc = read_capped(path, KCFG_MAX_TOKEN + 4096, &b);
    if (rc) {
        *why = rc == -E2BIG ? "is longer than 64 KiB" : strerror(-rc);
        return rc;
    }
    char *s = b.data;
    size_t len = b.len;
    while (len &&
           (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len && (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if ((*why = token_check(s, len))) {
        opbuf_release(&b);
        return -EINVAL;
    }
    *out = strndup(s, len);
    opbuf_release(&b);
    if (!*out) {
        *why = "out of memory";
        return -ENOMEM;
    }
    return 0;
}

/* --- parsing the files ------------------------------------------------------------------- */

static void kc_file_release(kc_file *f)
{
    free(f->path);
    free(f->dir);
    opyaml_release(&f->doc);
}

static int kc_file_parse(kc_file *f, const char *path, const char *data, size_t len, operr *err)
{
    memset(f, 0, sizeof *f);
    opyaml_init(&f->doc);
    f->path = strdup(path);
    f->dir = dir_of(path);
    if (!f->path || !f->dir)
        return operr_set(err, -ENOMEM, "kubeconfig '%s': out of memory", path);
    if (len > KCFG_MAX_FILE)
        return kc_err(err, -E2BIG, path, NULL, NULL, "%zu bytes is more than the %zu allowed", len,
                      KCFG_MAX_FILE);
    opyaml_limits lim = {.max_bytes = KCFG_MAX_FILE, .max_depth = KC_MAX_DEPTH, .max_docs = 16};
    int rc = opyaml_load(&f->doc, data, len, &lim, err);
    if (rc)
        return operr_wrap(err, rc, "kubeconfig '%s': not valid YAML", path);
    return 0;
}

static int kc_file_read(kc_file *f, const char *path, operr *err)
{
    opbuf b;
    int rc = read_capped(path, KCFG_MAX_FILE, &b);
    if (rc) {
        memset(f, 0, sizeof *f);
        if (rc == -E2BIG)
            return kc_err(err, rc, path, NULL, NULL, "file is larger than the %zu bytes allowed",
                          KCFG_MAX_FILE);
        return kc_err(err, rc, path, NULL, NULL, "cannot read: %s", strerror(-rc));
    }
    rc = kc_file_parse(f, path, b.data, b.len, err);
    opbuf_release(&b);
    return rc;
}

static void kc_set_init(kc_set *s, const char *label)
{
    memset(s, 0, sizeof *s);
    s->label = label;
    for (int k = 0; k < KC_NKINDS; k++)
        opmap_init(&s->names[k]);
}

static void kc_set_release(kc_set *s)
{
    for (int k = 0; k < KC_NKINDS; k++)
        opmap_release(&s->names[k], free);
}

/* An optional string field: absent/null → *out NULL; anything but a scalar is an error. */
static int kc_str(const kc_file *f, const opyaml_node *map, const char *key, const char *prefix,
                  const char **out, operr *err)
{
    const opyaml_node *v = opyaml_get(map, key);
    *out = NULL;
    if (opyaml_is_null(v))
        return 0;
    if (v->kind != OPYAML_SCALAR) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        return kc_err(err, -EINVAL, f->path, path, v, "expected a string, found a %s",
                      opyaml_kind_name(v));
    }
    if (strlen(v->str) != v->len) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        return kc_err(err, -EINVAL, f->path, path, v, "contains a NUL byte");
    }
    *out = v->str;
    return 0;
}

/* Index one list (clusters, users or contexts) of one file into the set. */
static int kc_index(kc_set *s, const kc_file *f, const opyaml_node *root, int kind, operr *err)
{
    const char *list = kc_list[kind], *inner = kc_inner[kind];
    const opyaml_node *seq = opyaml_get(root, list);
    char path[256];
    int rc = 0;
    opmap seen; /* name → index + 1, within this file */
    opmap_init(&seen);
    if (opyaml_is_null(seq))
        goto out;
    if (seq->kind != OPYAML_SEQ) {
        rc = kc_err(err, -EINVAL, f->path, list, seq, "expected a list, found a %s",
                    opyaml_kind_name(seq));
        goto out;
    }
    for (size_t i = 0; i < seq->n; i++) {
        const opyaml_node *item = seq->items[i];
        snprintf(path, sizeof path, "%s[%zu]", list, i);
        if (item->kind != OPYAML_MAP) {
            rc = kc_err(err, -EINVAL, f->path, path, item, "expected a map, found a %s",
                        opyaml_kind_name(item));
            goto out;
        }
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s.", path);
        const char *name;
        rc = kc_str(f, item, "name", prefix, &name, err);
        if (rc)
            goto out;
        if (!name || !*name) {
            rc = kc_err(err, -EINVAL, f->path, path, item, "has no name");
            goto out;
        }
        uintptr_t first = (uintptr_t)opmap_get(&seen, name);
        if (first) {
            snprintf(path, sizeof path, "%s[%zu].name", list, i);
            rc = kc_err(err, -EINVAL, f->path, path, opyaml_get(item, "name"),
                        "duplicate name \"%s\" (first defined at %s[%zu], line %d)", name, list,
                        (size_t)(first - 1), seq->items[first - 1]->line);
            goto out;
        }
        if (opmap_put(&seen, name, (void *)(uintptr_t)(i + 1), NULL)) {
            rc = operr_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        const opyaml_node *body = opyaml_get(item, inner);
        if (!opyaml_is_null(body) && body->kind != OPYAML_MAP) {
            snprintf(path, sizeof path, "%s[%zu].%s", list, i, inner);
            rc = kc_err(err, -EINVAL, f->path, path, body, "expected a map, found a %s",
                        opyaml_kind_name(body));
            goto out;
        }
        if (opmap_get(&s->names[kind], name))
            continue; /* merged: an earlier file defined it first */
        kc_entry *e = calloc(1, sizeof *e);
        if (!e || opmap_put(&s->names[kind], name, e, NULL)) {
            free(e);
            rc = operr_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        e->f = f;
        e->item = item;
        e->body = opyaml_is_null(body) ? NULL : body;
        e->at = body ? opyaml_get_pair(item, inner)->key : item;
        e->idx = i;
    }
out:
    opmap_release(&seen, NULL);
    return rc;
}

static int kc_set_add(kc_set *s, const kc_file *f, operr *err)
{
    const opyaml_node *root = opyaml_root(&f->doc);
    int rc;
    if (f->doc.nroots > 1)
        return kc_err(err, -EINVAL, f->path, NULL, f->doc.roots[1],
                      "more than one YAML document in a kubeconfig");
    if (!root || (opyaml_is_null(root) && root->kind == OPYAML_SCALAR))
        return kc_err(err, -ENODATA, f->path, NULL, NULL, "the file is empty");
    if (root->kind != OPYAML_MAP)
        return kc_err(err, -EINVAL, f->path, NULL, root,
                      "expected a map at the top level, found a %s", opyaml_kind_name(root));
    const char *api, *kind, *cur;
    if ((rc = kc_str(f, root, "apiVersion", "", &api, err)) ||
        (rc = kc_str(f, root, "kind", "", &kind, err)) ||
        (rc = kc_str(f, root, "current-context", "", &cur, err)))
        return rc;
    if (api && strcmp(api, "v1") != 0)
        return kc_err(err, -EINVAL, f->path, "apiVersion", opyaml_get(root, "apiVersion"),
                      "\"%s\" is not supported (want v1)", api);
    if (kind && strcmp(kind, "Config") != 0)
        return kc_err(err, -EINVAL, f->path, "kind", opyaml_get(root, "kind"),
                      "\"%s\" is not a kubeconfig (want Config)", kind);
    for (int k = 0; k < KC_NKINDS; k++) {
        rc = kc_index(s, f, root, k, err);
        if (rc)
            return rc;
    }
    if (cur && *cur && !s->current) {
        s->current = cur;
        s->current_file = f;
        s->current_node = opyaml_get(root, "current-context");
    }
    return 0;
}

/* --- resolving the context into a kcfg ---------------------------------------------------- */

/* A file path field: resolved against the file's directory, and readable. */
static int kc_path(const kc_entry *e, const char *prefix, const char *key, char **out, operr *err)
{
    const char *v;
    int rc = kc_str(e->f, e->body, key, prefix, &v, err);
    *out = NULL;
    if (rc || !v || !*v)
        return rc;
    char path[256];
    snprintf(path, sizeof path, "%s%s", prefix, key);
    char *p = path_join(e->f->dir, v);
    if (!p)
        return operr_set(err, -ENOMEM, "out of memory");
    struct stat st;
    if (access(p, R_OK) != 0 || stat(p, &st) != 0) {
        rc = kc_err(err, -errno, e->f->path, path, opyaml_get(e->body, key), "cannot read '%s': %s",
                    p, strerror(errno));
        free(p);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO or device could block or never end */
        rc = kc_err(err, -EINVAL, e->f->path, path, opyaml_get(e->body, key),
                    "'%s' is not a regular file", p);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* A base64 field, decoded. */
static int kc_b64(const kc_entry *e, const char *prefix, const char *key, char **out,
                  size_t *outlen, operr *err)
{
    const char *v;
    int rc = kc_str(e->f, e->body, key, prefix, &v, err);
    *out = NULL;
    *outlen = 0;
    if (rc || !v || !*v)
        return rc;
    char why[128];
    rc = opb64_decode(v, strlen(v), out, outlen, why, sizeof why);
    if (rc == -ENOMEM)
        return operr_set(err, rc, "out of memory");
    if (rc) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        return kc_err(err, rc, e->f->path, path, opyaml_get(e->body, key), "%s", why);
    }
    if (*outlen == 0) {
        free(*out);
        *out = NULL;
    }
    return 0;
}

static int kc_cluster(kcfg *c, const kc_entry *e, const char *name, operr *err)
{
    char prefix[256], path[256];
    const char *server, *sni;
    int rc;
    snprintf(prefix, sizeof prefix, "clusters[%zu].cluster.", e->idx);
    if (!e->body) {
        snprintf(path, sizeof path, "clusters[%zu].cluster", e->idx);
        return kc_err(err, -EINVAL, e->f->path, path, e->item, "cluster \"%s\" has no settings",
                      name);
    }
    rc = kc_str(e->f, e->body, "server", prefix, &server, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%sserver", prefix);
    if (!server || !*server)
        return kc_err(err, -EINVAL, e->f->path, path, e->at, "cluster \"%s\" has no server", name);
    const char *why = NULL;
    if (!(c->server = server_normalize(server, &why)))
        return kc_err(err, -EINVAL, e->f->path, path, opyaml_get(e->body, "server"), "\"%s\" %s",
                      server, why);
    if ((rc = kc_path(e, prefix, "certificate-authority", &c->ca_file, err)) ||
        (rc = kc_b64(e, prefix, "certificate-authority-data", &c->ca_data, &c->ca_data_len, err)))
        return rc;
    if (c->ca_data) { /* client-go: the data overrides the file */
        free(c->ca_file);
        c->ca_file = NULL;
    }
    const opyaml_node *ins = opyaml_get(e->body, "insecure-skip-tls-verify");
    snprintf(path, sizeof path, "%sinsecure-skip-tls-verify", prefix);
    if (!opyaml_is_null(ins) && opyaml_bool(ins, &c->insecure))
        return kc_err(err, -EINVAL, e->f->path, path, ins, "expected true or false, found %s%s%s",
                      ins->kind == OPYAML_SCALAR ? "\"" : "a ",
                      ins->kind == OPYAML_SCALAR ? ins->str : opyaml_kind_name(ins),
                      ins->kind == OPYAML_SCALAR ? "\"" : "");
    if (c->insecure && (c->ca_file || c->ca_data))
        return kc_err(err, -EINVAL, e->f->path, path, ins,
                      "cannot be combined with a certificate authority (cluster \"%s\")", name);
    rc = kc_str(e->f, e->body, "tls-server-name", prefix, &sni, err);
    if (rc)
        return rc;
    if (sni && *sni && !(c->tls_server_name = strdup(sni)))
        return operr_set(err, -ENOMEM, "out of memory");
    if (c->insecure)
        OPLOG_W("kubeconfig '%s': cluster \"%s\" sets insecure-skip-tls-verify: the API server's "
                "certificate will NOT be verified; anyone on the path can impersonate it",
                e->f->path, name);
    return 0;
}

static int kc_user(kcfg *c, const kc_entry *e, const char *name, operr *err)
{
    static const struct {
        const char *key, *what;
    } unsupported[] = {
        {"exec", "an exec credential plugin"},
        {"auth-provider", "an auth-provider plugin"},
        {"username", "basic authentication (username/password)"},
        {"password", "basic authentication (username/password)"},
    };
    char prefix[256], path[256];
    int rc;
    if (!e->body)
        return 0; /* a user with no credentials: anonymous */
    snprintf(prefix, sizeof prefix, "users[%zu].user.", e->idx);
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const opyaml_node *v = opyaml_get(e->body, unsupported[i].key);
        if (opyaml_is_null(v))
            continue;
        snprintf(path, sizeof path, "%s%s", prefix, unsupported[i].key);
        return kc_err(err, -ENOTSUP, e->f->path, path,
                      opyaml_get_pair(e->body, unsupported[i].key)->key,
                      "user \"%s\" uses %s, which optipod does not support; use token, "
                      "tokenFile or a client certificate",
                      name, unsupported[i].what);
    }
    /* client-go would ignore these silently and the server would answer 401 */
    static const char *const misspelt[] = {"token-file", "token_file", "tokenfile"};
    for (size_t i = 0; i < sizeof misspelt / sizeof misspelt[0]; i++) {
        const opyaml_pair *mp = opyaml_get_pair(e->body, misspelt[i]);
        if (!mp)
            continue;
        snprintf(path, sizeof path, "%s%s", prefix, misspelt[i]);
        return kc_err(err, -EINVAL, e->f->path, path, mp->key,
                      "unknown field (user \"%s\"); the token file field is spelt tokenFile", name);
    }
    const char *token;
    rc = kc_str(e->f, e->body, "token", prefix, &token, err);
    if (rc)
        return rc;
    if (token && *token) {
        const char *why = token_check(token, strlen(token));
        if (why) {
            snprintf(path, sizeof path, "%stoken", prefix);
            return kc_err(err, -EINVAL, e->f->path, path, opyaml_get(e->body, "token"),
                          "the token %s", why);
        }
        if (!(c->token = strdup(token)))
            return operr_set(err, -ENOMEM, "out of memory");
    }
    rc = kc_path(e, prefix, "tokenFile", &c->token_file, err);
    if (rc)
        return rc;
    if (c->token_file) { /* read it now: a bad token file fails the load, not the first request */
        operr terr;
        operr_clear(&terr);
        if (!kcfg_bearer(c, &terr)) {
            snprintf(path, sizeof path, "%stokenFile", prefix);
            return kc_err(err, -EINVAL, e->f->path, path, opyaml_get(e->body, "tokenFile"), "%s",
                          terr.msg);
        }
    }
    if ((rc = kc_path(e, prefix, "client-certificate", &c->cert_file, err)) ||
        (rc =
             kc_b64(e, prefix, "client-certificate-data", &c->cert_data, &c->cert_data_len, err)) ||
        (rc = kc_path(e, prefix, "client-key", &c->key_file, err)) ||
        (rc = kc_b64(e, prefix, "client-key-data", &c->key_data, &c->key_data_len, err)))
        return rc;
    if (c->cert_file && c->cert_data) {
        snprintf(path, sizeof path, "%sclient-certificate-data", prefix);
        return kc_err(err, -EINVAL, e->f->path, path,
                      opyaml_get(e->body, "client-certificate-data"),
                      "user \"%s\" sets both client-certificate and client-certificate-data", name);
    }
    if (c->key_file && c->key_data) {
        snprintf(path, sizeof path, "%sclient-key-data", prefix);
        return kc_err(err, -EINVAL, e->f->path, path, opyaml_get(e->body, "client-key-data"),
                      "user \"%s\" sets both client-key and client-key-data", name);
    }
    int has_cert = c->cert_file || c->cert_data, has_key = c->key_file || c->key_data;
    if (has_cert != has_key) {
        snprintf(path, sizeof path, "users[%zu].user", e->idx);
        return kc_err(err, -EINVAL, e->f->path, path, e->at,
                      "user \"%s\" has a client %s but no client %s", name,
                      has_cert ? "certificate" : "key", has_cert ? "key" : "certificate");
    }
    return 0;
}

static int kc_resolve(kcfg *c, kc_set *s, const char *context, operr *err)
{
    const char *name = context && *context ? context : s->current;
    char prefix[256], path[256];
    const char *cl, *us, *ns;
    int rc;
    if (!name)
        return operr_set(err, -EINVAL,
                         "kubeconfig '%s': current-context is not set and no context was given",
                         s->label);
    const kc_entry *ce = opmap_get(&s->names[KC_CONTEXTS], name);
    if (!ce) {
        if (context && *context)
            return operr_set(err, -ENOENT, "kubeconfig '%s': no context named \"%s\"", s->label,
                             name);
        return kc_err(err, -ENOENT, s->current_file->path, "current-context", s->current_node,
                      "no context named \"%s\"", name);
    }
    snprintf(prefix, sizeof prefix, "contexts[%zu].context.", ce->idx);
    if (!ce->body) {
        snprintf(path, sizeof path, "contexts[%zu].context", ce->idx);
        return kc_err(err, -EINVAL, ce->f->path, path, ce->item, "context \"%s\" is empty", name);
    }
    if ((rc = kc_str(ce->f, ce->body, "cluster", prefix, &cl, err)) ||
        (rc = kc_str(ce->f, ce->body, "user", prefix, &us, err)) ||
        (rc = kc_str(ce->f, ce->body, "namespace", prefix, &ns, err)))
        return rc;
    snprintf(path, sizeof path, "%scluster", prefix);
    if (!cl || !*cl)
        return kc_err(err, -EINVAL, ce->f->path, path, ce->at, "context \"%s\" names no cluster",
                      name);
    const kc_entry *cle = opmap_get(&s->names[KC_CLUSTERS], cl);
    if (!cle)
        return kc_err(err, -ENOENT, ce->f->path, path, opyaml_get(ce->body, "cluster"),
                      "no cluster named \"%s\"", cl);
    snprintf(path, sizeof path, "%suser", prefix);
    if (!us || !*us)
        return kc_err(err, -EINVAL, ce->f->path, path, ce->at, "context \"%s\" names no user",
                      name);
    const kc_entry *ue = opmap_get(&s->names[KC_USERS], us);
    if (!ue)
        return kc_err(err, -ENOENT, ce->f->path, path, opyaml_get(ce->body, "user"),
                      "no user named \"%s\"", us);
    if (ns && *ns && !dns_label_ok(ns)) {
        snprintf(path, sizeof path, "%snamespace", prefix);
        return kc_err(err, -EINVAL, ce->f->path, path, opyaml_get(ce->body, "namespace"),
                      "\"%s\" is not a valid namespace name", ns);
    }
    if (!(c->source = strdup(ce->f->path)) || !(c->context = strdup(name)) ||
        !(c->ns = strdup(ns && *ns ? ns : "default")))
        return operr_set(err, -ENOMEM, "out of memory");
    if ((rc = kc_cluster(c, cle, cl, err)) || (rc = kc_user(c, ue, us, err)))
        return rc;
    return 0;
}

/* Merge the parsed files in order and resolve the context. */
static int kc_build(kcfg *c, kc_file *files, size_t n, const char *label, const char *context,
                    operr *err)
{
    kc_set s;
    int rc = 0;
    kc_set_init(&s, label);
    for (size_t i = 0; i < n; i++) {
        rc = kc_set_add(&s, &files[i], err);
        if (rc)
            goto out;
    }
    rc = kc_resolve(c, &s, context, err);
out:
    kc_set_release(&s);
    if (rc)
        kcfg_release(c);
    return rc;
}

int kcfg_load_mem(kcfg *c, const char *data, size_t len, const char *path, const char *context,
                  operr *err)
{
    kc_file f;
    kcfg_release(c);
    int rc = kc_file_parse(&f, path, data, len, err);
    if (!rc)
        rc = kc_build(c, &f, 1, path, context, err);
    kc_file_release(&f);
    return rc;
}

int kcfg_load_file(kcfg *c, const char *path, const char *context, operr *err)
{
    kc_file f;
    kcfg_release(c);
    int rc = kc_file_read(&f, path, err);
    if (!rc)
        rc = kc_build(c, &f, 1, path, context, err);
    kc_file_release(&f);
    return rc;
}

/* $KUBECONFIG's existing files, merged. *found is 0 when none exists. */
static int kc_load_list(kcfg *c, const char *list, const char *context, int *found, operr *err)
{
    kc_file *files = NULL;
    size_t n = 0;
    int rc = 0;
    char *copy = strdup(list);
    *found = 0;
    if (!copy)
        return operr_set(err, -ENOMEM, "out of memory");
    size_t max = 1;
    for (const char *p = list; *p; p++)
        max += *p == ':';
    if (!(files = calloc(max, sizeof *files))) {
        rc = operr_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        int dup = 0;
        for (size_t i = 0; i < n; i++)
            dup |= strcmp(files[i].path, p) == 0;
        struct stat st;
        if (dup || stat(p, &st) != 0)
            continue; /* client-go skips missing files in the list */
        rc = kc_file_read(&files[n], p, err);
        n++;
        if (rc)
            goto out;
    }
    *found = n > 0;
    if (n)
        rc = kc_build(c, files, n, list, context, err);
out:
    for (size_t i = 0; i < n; i++)
        kc_file_release(&files[i]);
    free(files);
    free(copy);
    return rc;
}

/* --- in-cluster --------------------------------------------------------------------------- */

int kcfg_load_incluster(kcfg *c, const char *dir, operr *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char *ca = NULL, *nsfile = NULL;
    opbuf b;
    int rc = 0;
    kcfg_release(c);
    opbuf_init(&b, 0);
    if (!dir)
        dir = KCFG_INCLUSTER_DIR;
    if (!host || !*host || !port || !*port) {
        rc = operr_set(err, -ENOENT,
                       "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both "
                       "be set");
        goto out;
    }
    char *end;
    errno = 0;
    long pn = strtol(port, &end, 10);
    if (errno || *end || end == port || pn < 1 || pn > 65535) {
        rc = operr_set(err, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"%s\" is not a port",
                       port);
        goto out;
    }
    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == '@' || *p == '?' || *p == '#') {
            rc = operr_set(err, -EINVAL,
                           "in-cluster: KUBERNETES_SERVICE_HOST \"%s\" is not a host name or IP",
                           host);
            goto out;
        }
    }
    /* an IPv6 literal needs brackets in a URL */
    if (strchr(host, ':') && host[0] != '[')
        rc = opbuf_printf(&b, "https://[%s]:%ld", host, pn);
    else
        rc = opbuf_printf(&b, "https://%s:%ld", host, pn);
    if (rc || !(c->server = opbuf_detach(&b, NULL)) || !(c->source = strdup("in-cluster")) ||
        !(c->context = strdup("")) || !(c->token_file = path_join(dir, "token")) ||
        !(ca = path_join(dir, "ca.crt")) || !(nsfile = path_join(dir, "namespace"))) {
        rc = operr_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (access(ca, R_OK) == 0) {
        c->ca_file = ca;
        ca = NULL;
    } else {
        OPLOG_W("in-cluster: no CA bundle at '%s' (%s): the system trust store will be used", ca,
                strerror(errno));
    }
    const char *pod_ns = getenv("POD_NAMESPACE");
    if (pod_ns && *pod_ns) {
        c->ns = strdup(pod_ns);
    } else if (read_capped(nsfile, 4096, &b) == 0) {
        size_t len = b.len;
        while (len && (b.data[len - 1] == '\n' || b.data[len - 1] == ' ' ||
                       b.data[len - 1] == '\r' || b.data[len - 1] == '\t'))
            len--;
        b.data[len] = '\0';
        c->ns = strdup(len && dns_label_ok(b.data) ? b.data : "default");
        opbuf_release(&b);
    } else {
        c->ns = strdup("default");
    }
    if (!c->ns) {
        rc = operr_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (!kcfg_bearer(c, err))
        rc = operr_wrap(err, -EINVAL, "in-cluster");
out:
    free(ca);
    free(nsfile);
    opbuf_release(&b);
    if (rc)
        kcfg_release(c);
    return rc;
}

/* --- the search order --------------------------------------------------------------------- */

int kcfg_load_from(kcfg *c, const char *explicit_path, const char *context,
                   const char *incluster_dir, operr *err)
{
    char tried[OPERR_MAX];
    char *token = NULL;
    int rc = 0;
    kcfg_release(c);
    if (explicit_path && *explicit_path)
        return kcfg_load_file(c, explicit_path, context, err);

    const char *env = getenv("KUBECONFIG");
    int found = 0;
    if (env && *env) {
        rc = kc_load_list(c, env, context, &found, err);
        if (rc || found)
            return rc;
        snprintf(tried, sizeof tried, "$KUBECONFIG (no listed file exists)");
    } else {
        snprintf(tried, sizeof tried, "$KUBECONFIG (unset)");
    }

    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = incluster_dir ? incluster_dir : KCFG_INCLUSTER_DIR;
    size_t used = strlen(tried);
    if (host && *host && port && *port) {
        if (!(token = path_join(dir, "token")))
            return operr_set(err, -ENOMEM, "out of memory");
        struct stat st;
        if (stat(token, &st) == 0) {
            free(token);
            return kcfg_load_incluster(c, dir, err);
        }
        snprintf(tried + used, sizeof tried - used, ", in-cluster (no token at '%s')", token);
        free(token);
    } else {
        snprintf(tried + used, sizeof tried - used,
                 ", in-cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
    }

    const char *home = getenv("HOME");
    used = strlen(tried);
    if (home && *home) {
        char *p = path_join(home, ".kube/config");
        if (!p)
            return operr_set(err, -ENOMEM, "out of memory");
        struct stat st;
        if (stat(p, &st) == 0) {
            rc = kcfg_load_file(c, p, context, err);
            free(p);
            return rc;
        }
        snprintf(tried + used, sizeof tried - used, ", '%s' (%s)", p, strerror(errno));
        free(p);
    } else {
        snprintf(tried + used, sizeof tried - used, ", ~/.kube/config ($HOME unset)");
    }
    return operr_set(err, -ENOENT, "no Kubernetes configuration found; tried %s", tried);
}

int kcfg_load(kcfg *c, const char *explicit_path, const char *context, operr *err)
{
    return kcfg_load_from(c, explicit_path, context, NULL, err);
}

/* --- the bearer token --------------------------------------------------------------------- */

const char *kcfg_bearer(kcfg *c, operr *err)
{
    if (!c->token_file)
        return c->token;
    time_t now = time(NULL);
    struct stat st;
    int have_stat = stat(c->token_file, &st) == 0;
    int changed = have_stat && (st.st_mtim.tv_sec != c->token_mtime ||
                                st.st_mtim.tv_nsec != c->token_mtime_nsec);
    int stale = now - c->token_read_at >= KC_TOKEN_MAXAGE || now < c->token_read_at;
    if (c->token_cached && !changed && !stale)
        return c->token_cached;

    char *t = NULL;
    const char *why = NULL;
    /* remember this version even if it cannot be read: one warning per change */
    c->token_read_at = now;
    if (have_stat) {
        c->token_mtime = st.st_mtim.tv_sec;
        c->token_mtime_nsec = st.st_mtim.tv_nsec;
    }
    if (token_read(c->token_file, &t, &why) != 0) {
        if (c->token_cached) {
            OPLOG_W("token file '%s' %s; keeping the previous token", c->token_file, why);
            return c->token_cached;
        }
        operr_set(err, -EINVAL, "token file '%s' %s", c->token_file, why);
        return NULL;
    }
    if (c->token_cached && strcmp(c->token_cached, t) != 0)
        OPLOG_V(1, "token file '%s' rotated", c->token_file);
    free(c->token_cached);
    c->token_cached = t;
    return c->token_cached;
}
