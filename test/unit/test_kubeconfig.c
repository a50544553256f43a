/*
 * kcfg: kubeconfig files (test/data/kubeconfig/ and generated ones), the
 * $KUBECONFIG merge, in-cluster configuration, the search order, token
 * rotation, and an error naming file, YAML path and line for each bad input.
 */
#include "kube/config.h"
#include "test.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA "test/data/kubeconfig"

static char tmpdir[256];
static char cwd[4096];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void tmp_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/optipod-kcfg-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(tmpdir));
}

static void tmp_remove(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

/* Write `text` to tmpdir/name; returns the full path in a static ring. */
static const char *tmp_write(const char *name, const char *text)
{
    static char ring[8][512];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ_INT(fwrite(text, 1, strlen(text), f), strlen(text));
    ASSERT_EQ_INT(fclose(f), 0);
    return p;
}

static void env_clear(void)
{
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("POD_NAMESPACE");
    unsetenv("HOME");
}

static char *data_path(const char *name)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/" DATA "/%s", cwd, name);
    return p;
}

/* Log capture for warnings. */
static char *log_text;
static size_t log_len;
static FILE *log_f;

static void log_capture(void)
{
    log_f = open_memstream(&log_text, &log_len);
    ASSERT_NOT_NULL(log_f);
    oplog_set_sink(log_f);
}

static void log_done(void)
{
    oplog_set_sink(NULL);
    if (log_f)
        fclose(log_f);
    log_f = NULL;
}

static void log_free(void)
{
    free(log_text);
    log_text = NULL;
    log_len = 0;
}

/* --- good kubeconfigs ------------------------------------------------------------------- */

static void test_static_token_relative_ca(void)
{
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/token.yaml", NULL, &err), 0);
    ASSERT_STR_EQ(c.source, DATA "/token.yaml");
    ASSERT_STR_EQ(c.context, "dev");
    ASSERT_STR_EQ(c.server, "https://127.0.0.1:6443");
    ASSERT_STR_EQ(c.ns, "team-a");
    ASSERT_STR_EQ(c.ca_file, data_path("ca.crt"));
    ASSERT_NULL(c.ca_data);
    ASSERT_STR_EQ(c.token, "static-token-abc.def");
    ASSERT_NULL(c.token_file);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "static-token-abc.def");
    ASSERT_STR_EQ(c.tls_server_name, "kubernetes.default");
    ASSERT_EQ_INT(c.insecure, 0);
    ASSERT_NULL(c.cert_file);
    ASSERT_NULL(c.cert_data);
    kcfg_release(&c);
    ASSERT_NULL(c.server);
}

static void test_token_file_and_default_namespace(void)
{
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/token-file.yaml", NULL, &err), 0);
    ASSERT_STR_EQ(c.server, "http://localhost:8080");
    ASSERT_STR_EQ(c.ns, "default");
    ASSERT_NULL(c.token);
    ASSERT_STR_EQ(c.token_file, data_path("token"));
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "file-token-0123456789");
    ASSERT_NULL(c.ca_file);
    kcfg_release(&c);
}

static void test_client_cert_files_ipv6_server(void)
{
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/client-files.yaml", NULL, &err), 0);
    ASSERT_STR_EQ(c.context, "admin@kind");
    ASSERT_STR_EQ(c.server, "https://[::1]:36443");
    ASSERT_STR_EQ(c.ca_file, data_path("./ca.crt"));
    ASSERT_STR_EQ(c.cert_file, data_path("client.crt"));
    ASSERT_STR_EQ(c.key_file, data_path("client.key"));
    ASSERT_NULL(c.cert_data);
    ASSERT_NULL(kcfg_bearer(&c, &err));
    kcfg_release(&c);
}

static void test_embedded_data_decoded(void)
{
    kcfg c;
    operr err = {{0}};
    size_t ca_len, crt_len, key_len;
    char *ca = test_read_file(DATA "/ca.crt", &ca_len);
    char *crt = test_read_file(DATA "/client.crt", &crt_len);
    char *key = test_read_file(DATA "/client.key", &key_len);
    kcfg_init(&c);
    int rc = kcfg_load_file(&c, DATA "/client-data.yaml", NULL, &err);
    if (rc)
        printf("  err: %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_EQ(c.ns, "kube-system");
    ASSERT_NULL(c.ca_file);
    ASSERT_EQ_INT(c.ca_data_len, ca_len);
    ASSERT(memcmp(c.ca_data, ca, ca_len) == 0);
    ASSERT_EQ_INT(c.cert_data_len, crt_len);
    ASSERT(memcmp(c.cert_data, crt, crt_len) == 0);
    /* the key is folded over several lines: the spaces are not base64 */
    ASSERT_EQ_INT(c.key_data_len, key_len);
    ASSERT(memcmp(c.key_data, key, key_len) == 0);
    ASSERT_STR_CONTAINS(c.ca_data, "-----BEGIN CERTIFICATE-----");
    free(ca);
    free(crt);
    free(key);
    kcfg_release(&c);
}

static void test_insecure_warns_naming_cluster(void)
{
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    log_capture();
    int rc = kcfg_load_file(&c, DATA "/insecure.yaml", NULL, &err);
    log_done();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c.insecure, 1);
    ASSERT_NOT_NULL(log_text);
    ASSERT(log_text[0] == 'W');
    ASSERT_STR_CONTAINS(log_text, "cluster \"lab-cluster\"");
    ASSERT_STR_CONTAINS(log_text, "insecure-skip-tls-verify");
    ASSERT_STR_CONTAINS(log_text, "NOT be verified");
    log_free();
    kcfg_release(&c);
}

static void test_explicit_context_overrides_current(void)
{
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/multi-context.yaml", NULL, &err), 0);
    ASSERT_STR_EQ(c.context, "dev");
    ASSERT_STR_EQ(c.server, "https://127.0.0.1:1001");
    ASSERT_STR_EQ(c.ns, "dev");
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "dev-token");

    /* a second load into the same kcfg replaces everything */
    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/multi-context.yaml", "prod", &err), 0);
    ASSERT_STR_EQ(c.context, "prod");
    ASSERT_STR_EQ(c.server, "https://127.0.0.1:1002");
    ASSERT_STR_EQ(c.ns, "default");
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "prod-token");

    /* tokenFile wins over token when a user sets both */
    const char *both = "current-context: b\n"
                       "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
                       "users: [{name: u, user: {token: inline, tokenFile: token}}]\n"
                       "contexts: [{name: b, context: {cluster: c, user: u}}]\n";
    ASSERT_EQ_INT(kcfg_load_mem(&c, both, strlen(both), data_path("both.yaml"), NULL, &err), 0);
    ASSERT_STR_EQ(c.token, "inline");
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "file-token-0123456789");

    ASSERT_EQ_INT(kcfg_load_file(&c, DATA "/multi-context.yaml", "anon", &err), 0);
    ASSERT_NULL(kcfg_bearer(&c, &err));
    ASSERT_NULL(c.cert_file);
    kcfg_release(&c);
}

static void test_load_mem_relative_to_named_dir(void)
{
    const char *y = "apiVersion: v1\n"
                    "kind: Config\n"
                    "current-context: m\n"
                    "clusters: [{name: c, cluster: {server: 'HTTPS://Example.test:8443/api/'}}]\n"
                    "users: [{name: u, user: {tokenFile: token}}]\n"
                    "contexts: [{name: m, context: {cluster: c, user: u}}]\n";
    kcfg c;
    operr err = {{0}};
    kcfg_init(&c);
    ASSERT_EQ_INT(kcfg_load_mem(&c, y, strlen(y), data_path("virtual.yaml"), NULL, &err), 0);
    ASSERT_STR_EQ(c.server, "https://Example.test:8443/api");
    ASSERT_STR_EQ(c.token_file, data_path("token"));
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "file-token-0123456789");
    kcfg_release(&c);
}

/* --- $KUBECONFIG merge and the search order ----------------------------------------------- */

static void test_kubeconfig_list_merge(void)
{
    kcfg c;
    operr err = {{0}};
    char list[2048];
    env_clear();
    tmp_make();
    char sub[600];
    snprintf(sub, sizeof sub, "%s/b", tmpdir);
    ASSERT_EQ_INT(mkdir(sub, 0700), 0);
    /* file a: no current-context; defines cluster "shared" and user "ua" */
    const char *a = tmp_write("a.yaml", "apiVersion: v1\nkind: Config\n"
                                        "clusters:\n"
                                        "- name: shared\n"
                                        "  cluster: {server: 'https://127.0.0.1:1111'}\n"
                                        "users:\n"
                                        "- name: ua\n"
                                        "  user: {token: token-from-a}\n");
    /* file b (another directory): the first current-context, a context using a's
     * cluster and its own user whose relative tokenFile is b's */
    tmp_write("b/tok", "token-from-b-file\n");
    const char *b = tmp_write("b/config", "current-context: merged\n"
                                          "clusters:\n"
                                          "- name: shared\n"
                                          "  cluster: {server: 'https://127.0.0.1:2222'}\n"
                                          "users:\n"
                                          "- name: ub\n"
                                          "  user: {tokenFile: tok}\n"
                                          "- name: ua\n"
                                          "  user: {token: token-a-shadowed}\n"
                                          "contexts:\n"
                                          "- name: merged\n"
                                          "  context: {cluster: shared, user: ub, namespace: m}\n"
                                          "- name: other\n"
                                          "  context: {cluster: shared, user: ua}\n");
    /* file c: sets current-context too late, and redefines "merged" too late */
    const char *cfile = tmp_write("c.yaml", "current-context: other\n"
                                            "contexts:\n"
                                            "- name: merged\n"
                                            "  context: {cluster: nope, user: nope}\n");
    snprintf(list, sizeof list, "%s/missing.yaml::%s:%s:%s:%s", tmpdir, a, b, a, cfile);
    setenv("KUBECONFIG", list, 1);
    kcfg_init(&c);
    int rc = kcfg_load_from(&c, NULL, NULL, tmpdir, &err);
    if (rc)
        printf("  err: %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_EQ(c.context, "merged");
    ASSERT_STR_EQ(c.source, b);
    ASSERT_STR_EQ(c.server, "https://127.0.0.1:1111"); /* a's "shared" came first */
    ASSERT_STR_EQ(c.ns, "m");
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-from-b-file");
    char want[700];
    snprintf(want, sizeof want, "%s/b/tok", tmpdir);
    ASSERT_STR_EQ(c.token_file, want);

    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, "other", tmpdir, &err), 0);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-from-a"); /* a's "ua" came first */

    /* a bad file in the list is an error, not skipped */
    const char *bad = tmp_write("bad.yaml", "clusters: 7\n");
    snprintf(list, sizeof list, "%s:%s", a, bad);
    setenv("KUBECONFIG", list, 1);
    ASSERT_NE_INT(kcfg_load_from(&c, NULL, NULL, tmpdir, &err), 0);
    ASSERT_STR_CONTAINS(err.msg, bad);
    ASSERT_STR_CONTAINS(err.msg, "clusters (line 1): expected a list, found a string");

    /* merged without any current-context: the error names the list */
    snprintf(list, sizeof list, "%s", a);
    setenv("KUBECONFIG", list, 1);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, tmpdir, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "current-context is not set");
    kcfg_release(&c);
    env_clear();
    tmp_remove();
}

static const char *incluster_dir(const char *token, const char *ns, int with_ca)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/sa", tmpdir);
    mkdir(dir, 0700);
    if (token)
        tmp_write("sa/token", token);
    if (ns)
        tmp_write("sa/namespace", ns);
    if (with_ca) {
        char *ca = test_read_file(DATA "/ca.crt", NULL);
        tmp_write("sa/ca.crt", ca);
        free(ca);
    }
    return dir;
}

static void test_search_order(void)
{
    kcfg c;
    operr err = {{0}};
    char home[600], p[700];
    int rc;
    env_clear();
    tmp_make();
    kcfg_init(&c);
    const char *sa = incluster_dir("sa-token\n", "sa-ns\n", 1);

    /* nothing at all: the error lists every place tried */
    setenv("HOME", tmpdir, 1);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "no Kubernetes configuration found");
    ASSERT_STR_CONTAINS(err.msg, "$KUBECONFIG (unset)");
    ASSERT_STR_CONTAINS(err.msg, "in-cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
    snprintf(p, sizeof p, "'%s/.kube/config' (No such file or directory)", tmpdir);
    ASSERT_STR_CONTAINS(err.msg, p);

    /* ~/.kube/config */
    snprintf(home, sizeof home, "%s/.kube", tmpdir);
    ASSERT_EQ_INT(mkdir(home, 0700), 0);
    tmp_write(".kube/config", "current-context: h\n"
                              "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:4'}}]\n"
                              "users: [{name: u, user: {token: home}}]\n"
                              "contexts: [{name: h, context: {cluster: c, user: u}}]\n");
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), 0);
    ASSERT_STR_EQ(c.token, "home");

    /* in-cluster beats home */
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), 0);
    ASSERT_STR_EQ(c.source, "in-cluster");
    /* env set but no token there: not in a pod, home is used */
    snprintf(p, sizeof p, "%s/nowhere", tmpdir);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, p, &err), 0);
    ASSERT_STR_EQ(c.token, "home");

    /* $KUBECONFIG beats in-cluster; a list of missing files does not */
    snprintf(p, sizeof p, "%s/none-1:%s/none-2", tmpdir, tmpdir);
    setenv("KUBECONFIG", p, 1);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), 0);
    ASSERT_STR_EQ(c.source, "in-cluster");
    setenv("KUBECONFIG", data_path("token.yaml"), 1);
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), 0);
    ASSERT_STR_EQ(c.token, "static-token-abc.def");

    /* an explicit path beats everything, and a missing one is an error */
    log_capture();
    rc = kcfg_load_from(&c, DATA "/insecure.yaml", NULL, sa, &err);
    log_done();
    log_free();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_EQ(c.token, "t0k3n");
    ASSERT_EQ_INT(kcfg_load_from(&c, DATA "/nope.yaml", NULL, sa, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "kubeconfig '" DATA "/nope.yaml': cannot read: No such file");
    ASSERT_NULL(c.server);

    /* without $HOME the error still says what was tried */
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("HOME");
    ASSERT_EQ_INT(kcfg_load_from(&c, NULL, NULL, sa, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "~/.kube/config ($HOME unset)");

    /* kcfg_load() is the same search with the real service-account directory */
    ASSERT_EQ_INT(kcfg_load(&c, DATA "/token.yaml", "dev", &err), 0);
    ASSERT_STR_EQ(c.ns, "team-a");
    kcfg_release(&c);
    env_clear();
    tmp_remove();
}

/* --- in-cluster ---------------------------------------------------------------------------- */

static void test_incluster(void)
{
    kcfg c;
    operr err = {{0}};
    env_clear();
    tmp_make();
    kcfg_init(&c);
    const char *sa = incluster_dir("  jwt.header.sig \n", "team-b\n", 1);

    ASSERT_EQ_INT(kcfg_load_incluster(&c, sa, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT");

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    ASSERT_EQ_INT(kcfg_load_incluster(&c, sa, &err), 0);
    ASSERT_STR_EQ(c.source, "in-cluster");
    ASSERT_STR_EQ(c.context, "");
    ASSERT_STR_EQ(c.server, "https://10.96.0.1:443");
    ASSERT_STR_EQ(c.ns, "team-b");
    char want[700];
    snprintf(want, sizeof want, "%s/ca.crt", sa);
    ASSERT_STR_EQ(c.ca_file, want);
    snprintf(want, sizeof want, "%s/token", sa);
    ASSERT_STR_EQ(c.token_file, want);
    ASSERT_NULL(c.token);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "jwt.header.sig");

    /* IPv6 service host; POD_NAMESPACE wins over the file */
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("POD_NAMESPACE", "from-env", 1);
    ASSERT_EQ_INT(kcfg_load_incluster(&c, sa, &err), 0);
    ASSERT_STR_EQ(c.server, "https://[fd00:10:96::1]:443");
    ASSERT_STR_EQ(c.ns, "from-env");
    unsetenv("POD_NAMESPACE");

    /* no namespace file, no CA: "default" and a warning */
    snprintf(want, sizeof want, "%s/namespace", sa);
    ASSERT_EQ_INT(unlink(want), 0);
    snprintf(want, sizeof want, "%s/ca.crt", sa);
    ASSERT_EQ_INT(unlink(want), 0);
    log_capture();
    int rc = kcfg_load_incluster(&c, sa, &err);
    log_done();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_EQ(c.ns, "default");
    ASSERT_NULL(c.ca_file);
    ASSERT_STR_CONTAINS(log_text, "no CA bundle");
    log_free();

    /* bad port, empty token, missing token */
    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    ASSERT_EQ_INT(kcfg_load_incluster(&c, sa, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "KUBERNETES_SERVICE_PORT \"https\" is not a port");
    ASSERT_NULL(c.server);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    tmp_write("sa/token", "\n");
    log_capture(); /* the CA is still missing: warnings expected */
    ASSERT_NE_INT(kcfg_load_incluster(&c, sa, &err), 0);
    ASSERT_STR_CONTAINS(err.msg, "in-cluster: token file '");
    ASSERT_STR_CONTAINS(err.msg, "/sa/token' is empty");
    snprintf(want, sizeof want, "%s/token", sa);
    ASSERT_EQ_INT(unlink(want), 0);
    ASSERT_NE_INT(kcfg_load_incluster(&c, sa, &err), 0);
    log_done();
    log_free();
    ASSERT_STR_CONTAINS(err.msg, "No such file or directory");
    kcfg_release(&c);
    env_clear();
    tmp_remove();
}

static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    ASSERT_EQ_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_token_rotation(void)
{
    kcfg c;
    operr err = {{0}};
    env_clear();
    tmp_make();
    kcfg_init(&c);
    const char *sa = incluster_dir("token-one\n", NULL, 0);
    char tok[700];
    snprintf(tok, sizeof tok, "%s/token", sa);
    time_t t0 = time(NULL) - 1000;
    set_mtime(tok, t0);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    log_capture();
    ASSERT_EQ_INT(kcfg_load_incluster(&c, sa, &err), 0);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-one");

    /* kubelet rewrites the file: the new mtime makes the next call re-read it */
    tmp_write("sa/token", "token-two\n");
    set_mtime(tok, t0 + 10);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-two");

    /* same mtime, less than a minute: the cache answers (the file is not read) */
    tmp_write("sa/token", "token-three\n");
    set_mtime(tok, t0 + 10);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-two");
    /* a minute later it is re-read even though the mtime did not move */
    c.token_read_at -= 61;
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-three");

    /* a broken rewrite keeps the previous token and warns once */
    tmp_write("sa/token", "   \n");
    set_mtime(tok, t0 + 20);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-three");
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-three");
    /* a vanished file too */
    ASSERT_EQ_INT(unlink(tok), 0);
    c.token_read_at -= 61;
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-three");
    log_done();
    ASSERT_NOT_NULL(log_text);
    ASSERT_STR_CONTAINS(log_text, "is empty; keeping the previous token");
    ASSERT_STR_CONTAINS(log_text, "No such file or directory; keeping the previous token");
    /* exactly two warnings: one per failed version */
    int lines = 0;
    for (const char *q = log_text; (q = strstr(q, "keeping the previous token")); q++)
        lines++;
    ASSERT_EQ_INT(lines, 2);
    log_free();

    /* and recovers when the file comes back */
    tmp_write("sa/token", "token-four");
    set_mtime(tok, t0 + 30);
    ASSERT_STR_EQ(kcfg_bearer(&c, &err), "token-four");
    kcfg_release(&c);
    env_clear();
    tmp_remove();
}

/* --- bad kubeconfigs ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *name;
    const char *yaml;
    const char *context;
    const char *want[3]; /* substrings of the error; "@" stands for tmpdir */
} bad_case;

#define HDR     "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
#define GOOD_CL "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
#define GOOD_US "users:\n- name: u\n  user:\n    token: abc\n"
#define GOOD_CX "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"

static const bad_case bad_cases[] = {
    {"not-yaml", "clusters: [a, b\nusers: {", NULL, {"not valid YAML: line ", "column"}},
    {"tab-indent", "clusters:\n\t- a\n", NULL, {"not valid YAML: line 2"}},
    {"bad-utf8", "current-context: \xff\xfe\xfd\n", NULL, {"not valid YAML"}},
    {"empty", "", NULL, {"the file is empty"}},
    {"comments-only", "# nothing here\n\n", NULL, {"the file is empty"}},
    {"top-scalar",
     "just a string\n",
     NULL,
     {"line 1: expected a map at the top level, found a string"}},
    {"top-list", "- a\n- b\n", NULL, {"expected a map at the top level, found a sequence"}},
    {"two-docs",
     HDR GOOD_CL GOOD_US GOOD_CX "---\nkind: Config\n",
     NULL,
     {"line 18: more than one YAML document"}},
    {"dup-yaml-key",
     HDR "current-context: y\n",
     NULL,
     {"not valid YAML: line 4 column 1: duplicate key \"current-context\""}},
    {"wrong-kind",
     "apiVersion: v1\nkind: Pod\n",
     NULL,
     {"kind (line 2): \"Pod\" is not a kubeconfig"}},
    {"wrong-api", "apiVersion: v2\n", NULL, {"apiVersion (line 1): \"v2\" is not supported"}},
    {"clusters-scalar",
     HDR "clusters: prod\n",
     NULL,
     {"clusters (line 4): expected a list, found a string"}},
    {"clusters-map",
     HDR "clusters: {a: b}\n",
     NULL,
     {"clusters (line 4): expected a list, found a map"}},
    {"user-item-scalar",
     HDR GOOD_CL "users:\n- bob\n",
     NULL,
     {"users[0] (line 9): expected a map, found a string"}},
    {"user-body-scalar",
     HDR GOOD_CL "users:\n- name: u\n  user: admin\n" GOOD_CX,
     NULL,
     {"users[0].user (line 10): expected a map, found a string"}},
    {"cluster-body-list",
     HDR "clusters:\n- name: c\n  cluster: [1]\n",
     NULL,
     {"clusters[0].cluster (line 6): expected a map, found a sequence"}},
    {"name-missing",
     HDR "contexts:\n- context: {cluster: c}\n",
     NULL,
     {"contexts[0] (line 5): has no name"}},
    {"name-map",
     HDR "contexts:\n- name: {a: 1}\n",
     NULL,
     {"contexts[0].name (line 5): expected a string, found a map"}},
    {"no-current-context",
     "apiVersion: v1\n" GOOD_CL GOOD_US GOOD_CX,
     NULL,
     {"current-context is not set and no context was given"}},
    {"context-not-found",
     HDR GOOD_CL GOOD_US,
     NULL,
     {"current-context (line 3): no context named \"x\""}},
    {"explicit-context-not-found",
     HDR GOOD_CL GOOD_US GOOD_CX,
     "staging",
     {"no context named \"staging\""}},
    {"cluster-not-found",
     HDR GOOD_US "contexts:\n- name: x\n  context: {cluster: prod, user: u}\n",
     NULL,
     {"contexts[0].context.cluster (line 10): no cluster named \"prod\""}},
    {"user-not-found",
     HDR GOOD_CL "contexts:\n- name: x\n  context:\n    cluster: c\n    user: root\n",
     NULL,
     {"contexts[0].context.user (line 12): no user named \"root\""}},
    {"context-no-user",
     HDR GOOD_CL "contexts:\n- name: x\n  context:\n    cluster: c\n",
     NULL,
     {"contexts[0].context.user (line 10): context \"x\" names no user"}},
    {"context-empty",
     HDR GOOD_CL GOOD_US "contexts:\n- name: x\n",
     NULL,
     {"contexts[0].context (line 13): context \"x\" is empty"}},
    {"bad-namespace",
     HDR GOOD_CL GOOD_US GOOD_CX "    namespace: Team_A\n",
     NULL,
     {"contexts[0].context.namespace (line 17): \"Team_A\" is not a valid namespace name"}},
    {"no-server",
     HDR "clusters:\n- name: c\n  cluster:\n    certificate-authority-data: \"\"\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.server (line 6): cluster \"c\" has no server"}},
    {"server-no-scheme",
     HDR "clusters:\n- name: c\n  cluster:\n    server: 127.0.0.1:6443\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.server (line 7): \"127.0.0.1:6443\" must start with https:// or "
      "http://"}},
    {"server-no-host",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https:///x\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.server (line 7): \"https:///x\" has no host"}},
    {"ca-missing",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    certificate-authority: "
         "missing.crt\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.certificate-authority (line 8): cannot read '@/missing.crt': No such "
      "file or directory"}},
    {"ca-bad-base64",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    certificate-authority-data: "
         "LS0t*LS1C\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.certificate-authority-data (line 8): invalid base64: character '*' at "
      "offset 4"}},
    {"ca-short-base64",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    certificate-authority-data: "
         "LS0tL\n" GOOD_US GOOD_CX,
     NULL,
     {"certificate-authority-data (line 8): invalid base64: 5 characters"}},
    {"insecure-not-bool",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    insecure-skip-tls-verify: "
         "\"true\"\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.insecure-skip-tls-verify (line 8): expected true or false, found "
      "\"true\""}},
    {"insecure-with-ca",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    insecure-skip-tls-verify: "
         "yes\n    certificate-authority-data: QUJD\n" GOOD_US GOOD_CX,
     NULL,
     {"insecure-skip-tls-verify (line 8): cannot be combined with a certificate authority"}},
    {"dup-cluster",
     HDR GOOD_CL "- name: c\n  cluster: {server: https://x}\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[1].name (line 8): duplicate name \"c\" (first defined at clusters[0], line 5)"}},
    {"dup-context",
     HDR GOOD_CL GOOD_US GOOD_CX "- name: x\n  context: {cluster: c, user: u}\n",
     NULL,
     {"contexts[1].name (line 17): duplicate name \"x\" (first defined at contexts[0], line 13)"}},
    {"dup-user",
     HDR GOOD_CL GOOD_US "- name: u\n  user: {}\n" GOOD_CX,
     NULL,
     {"users[1].name (line 12): duplicate name \"u\""}},
    {"exec",
     HDR GOOD_CL "users:\n- name: eks\n  user:\n    exec:\n      command: aws\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: eks}\n",
     NULL,
     {"users[0].user.exec (line 11): user \"eks\" uses an exec credential plugin, which optipod "
      "does not support"}},
    {"auth-provider",
     HDR GOOD_CL "users:\n- name: g\n  user:\n    auth-provider: {name: gcp}\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: g}\n",
     NULL,
     {"users[0].user.auth-provider (line 11): user \"g\" uses an auth-provider plugin, which "
      "optipod does not support"}},
    {"basic-auth",
     HDR GOOD_CL "users:\n- name: b\n  user:\n    username: admin\n    password: secret\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: b}\n",
     NULL,
     {"users[0].user.username (line 11): user \"b\" uses basic authentication (username/password), "
      "which optipod does not support"}},
    {"token-space",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    token: \"abc def\"\n" GOOD_CX,
     NULL,
     {"users[0].user.token (line 11): the token contains whitespace"}},
    {"token-map",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    token: {a: b}\n" GOOD_CX,
     NULL,
     {"users[0].user.token (line 11): expected a string, found a map"}},
    {"token-file-missing",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    tokenFile: gone\n" GOOD_CX,
     NULL,
     {"users[0].user.tokenFile (line 11): cannot read '@/gone'"}},
    {"token-file-empty",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    tokenFile: empty-token\n" GOOD_CX,
     NULL,
     {"users[0].user.tokenFile (line 11): token file '@/empty-token' is empty"}},
    {"token-file-device",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    tokenFile: /dev/null\n" GOOD_CX,
     NULL,
     {"users[0].user.tokenFile (line 11): '/dev/null' is not a regular file"}},
    {"ca-directory",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h\n    certificate-authority: "
         ".\n" GOOD_US GOOD_CX,
     NULL,
     {"clusters[0].cluster.certificate-authority (line 8): '@/.' is not a regular file"}},
    {"token-file-misspelt",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    token-file: /x\n" GOOD_CX,
     NULL,
     {"users[0].user.token-file (line 11): unknown field (user \"u\"); the token file field is "
      "spelt tokenFile"}},
    {"cert-both",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    client-certificate: cert.pem\n    "
                 "client-certificate-data: QUJD\n    client-key-data: QUJD\n" GOOD_CX,
     NULL,
     {"users[0].user.client-certificate-data (line 12): user \"u\" sets both"}},
    {"cert-no-key",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    client-certificate-data: QUJD\n" GOOD_CX,
     NULL,
     {"users[0].user (line 10): user \"u\" has a client certificate but no client key"}},
    {"key-bad-base64",
     HDR GOOD_CL "users:\n- name: u\n  user:\n    client-certificate-data: QUJD\n    "
                 "client-key-data: QU=D\n" GOOD_CX,
     NULL,
     {"users[0].user.client-key-data (line 12): invalid base64: padding before the end"}},
    {"deep",
     "a: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     NULL,
     {"nested deeper than 32 levels"}},
    {"alias-unknown", "current-context: *nope\n", NULL, {"not valid YAML: line 1"}},
};

static void test_bad_kubeconfigs(void)
{
    kcfg c;
    env_clear();
    tmp_make();
    tmp_write("empty-token", "\n\n");
    tmp_write("cert.pem", "-----BEGIN CERTIFICATE-----\n");
    kcfg_init(&c);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        operr err = {{0}};
        char fname[128];
        snprintf(fname, sizeof fname, "%s.yaml", bc->name);
        const char *path = tmp_write(fname, bc->yaml);
        int rc = kcfg_load_file(&c, path, bc->context, &err);
        if (rc == 0)
            test_fail(__FILE__, __LINE__, "%s: loaded without error", bc->name);
        ASSERT_NULL(c.server);
        char head[700];
        snprintf(head, sizeof head, "kubeconfig '%s': ", path);
        if (strncmp(err.msg, head, strlen(head)) != 0)
            test_fail(__FILE__, __LINE__, "%s: error does not start with the file: %s", bc->name,
                      err.msg);
        for (int k = 0; k < 3 && bc->want[k]; k++) {
            char want[700];
            const char *at = strchr(bc->want[k], '@');
            if (at)
                snprintf(want, sizeof want, "%.*s%s%s", (int)(at - bc->want[k]), bc->want[k],
                         tmpdir, at + 1);
            else
                snprintf(want, sizeof want, "%s", bc->want[k]);
            if (!strstr(err.msg, want))
                test_fail(__FILE__, __LINE__, "%s: error \"%s\" lacks \"%s\"", bc->name, err.msg,
                          want);
        }
    }
    kcfg_release(&c);
    tmp_remove();
}

static void test_file_level_errors(void)
{
    kcfg c;
    operr err = {{0}};
    env_clear();
    tmp_make();
    kcfg_init(&c);
    /* a directory */
    ASSERT_EQ_INT(kcfg_load_file(&c, tmpdir, NULL, &err), -EISDIR);
    ASSERT_STR_CONTAINS(err.msg, "cannot read: Is a directory");
    /* an unreadable file (root reads everything: skip that half then) */
    const char *p = tmp_write("locked.yaml", HDR GOOD_CL GOOD_US GOOD_CX);
    ASSERT_EQ_INT(chmod(p, 0), 0);
    if (geteuid() != 0) {
        ASSERT_EQ_INT(kcfg_load_file(&c, p, NULL, &err), -EACCES);
        ASSERT_STR_CONTAINS(err.msg, "cannot read: Permission denied");
    }
    /* more than 4 MiB */
    size_t big = KCFG_MAX_FILE + 10;
    char *text = malloc(big + 1);
    ASSERT_NOT_NULL(text);
    memset(text, '#', big);
    text[big] = '\0';
    p = tmp_write("big.yaml", text);
    free(text);
    ASSERT_EQ_INT(kcfg_load_file(&c, p, NULL, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "file is larger than the 4194304 bytes allowed");
    /* the same through kcfg_load_mem */
    ASSERT_EQ_INT(kcfg_load_mem(&c, "x: 1\n", KCFG_MAX_FILE + 1, "mem", NULL, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "kubeconfig 'mem': ");
    /* a token over 64 KiB, inline and in a file */
    size_t tl = KCFG_MAX_TOKEN + 1;
    char *y = malloc(tl + 512);
    ASSERT_NOT_NULL(y);
    int n = snprintf(y, 512, HDR GOOD_CL GOOD_CX "users:\n- name: u\n  user:\n    token: ");
    memset(y + n, 'a', tl);
    strcpy(y + n + tl, "\n");
    ASSERT_EQ_INT(kcfg_load_mem(&c, y, strlen(y), "mem", NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "users[0].user.token (line 16): the token is longer than 64 KiB");
    y[n + tl] = '\0';
    tmp_write("big-token", y + n);
    free(y);
    const char *k = tmp_write("bigtok.yaml", HDR GOOD_CL GOOD_CX
                              "users:\n- name: u\n  user:\n    tokenFile: big-token\n");
    ASSERT_EQ_INT(kcfg_load_file(&c, k, NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "is longer than 64 KiB");
    kcfg_release(&c);
    tmp_remove();
}

int main(void)
{
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    TEST_RUN(test_static_token_relative_ca);
    TEST_RUN(test_token_file_and_default_namespace);
    TEST_RUN(test_client_cert_files_ipv6_server);
    TEST_RUN(test_embedded_data_decoded);
    TEST_RUN(test_insecure_warns_naming_cluster);
    TEST_RUN(test_explicit_context_overrides_current);
    TEST_RUN(test_load_mem_relative_to_named_dir);
    TEST_RUN(test_kubeconfig_list_merge);
    TEST_RUN(test_search_order);
    TEST_RUN(test_incluster);
    TEST_RUN(test_token_rotation);
    TEST_RUN(test_bad_kubeconfigs);
    TEST_RUN(test_file_level_errors);
    log_done();
    log_free();
    tmp_remove();
    return test_summary();
}
