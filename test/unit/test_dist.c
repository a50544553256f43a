/*
 * What the project ships besides the binaries: dist/optipod.yaml (the one-file
 * install) is byte for byte what `make manifests` renders from the chart now,
 * and holds the whole install; test/tools/render_chart, which renders it, takes
 * Helm's value overrides and names what is wrong. The krew manifest
 * (plugins/optipod.yaml) is what `make dist` (test/dist.sh) writes for the archive it builds,
 * but for the sha256 of that archive (the release build's), and
 * test/tools/krew_check refuses a manifest that does not match its archive.
 */
#include "test.h"
#include "support/chart.h"
#include "support/proc.h"
#include "util/yaml2json.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIST        "dist/optipod.yaml"
#define DIST_PLUGIN "plugins/optipod.yaml"
#define NS          "optipod-system"

static const char *tool, *dir;

static void setup(void)
{
    tool = test_built("tools/render_chart");
    dir = test_tmpdir();
}

/* Run render_chart with argv (NULL-terminated, without the program); exit status. */
static int render(proc *p, const char *const *args)
{
    char *argv[32] = {(char *)tool};
    int n = 1;
    for (; args[n - 1]; n++) {
        ASSERT(n < 31);
        argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    proc_start(p, argv);
    return proc_wait_exit(p, 30);
}

static const char *str_at(const cJSON *obj, const char *path)
{
    const cJSON *v = chart_get(obj, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *parse_file(const char *path)
{
    size_t len;
    char *text = test_read_file(path, &len);
    cJSON *all = NULL, *docs = cJSON_CreateArray();
    operr err = {{0}};
    int rc = yaml2json_parse_all(text, len, &all, &err);
    free(text);
    if (rc)
        test_fail(__FILE__, __LINE__, "%s: %s", path, err.msg);
    cJSON *d;
    while ((d = cJSON_DetachItemFromArray(all, 0)) != NULL) {
        if (cJSON_IsNull(d))
            cJSON_Delete(d);
        else
            cJSON_AddItemToArray(docs, d);
    }
    cJSON_Delete(all);
    return docs;
}

/* The Makefile's MANIFEST_ARGS, split at blanks, into args (NULL-terminated). */
static void manifest_args(char *line, size_t cap, const char **args, int max)
{
    size_t len;
    char *mk = test_read_file("Makefile", &len);
    const char *p = strstr(mk, "\nMANIFEST_ARGS := ");
    ASSERT_NOT_NULL(p);
    p += strlen("\nMANIFEST_ARGS := ");
    snprintf(line, cap, "%.*s", (int)strcspn(p, "\n"), p);
    free(mk);
    int n = 0;
    for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " ")) {
        ASSERT(n < max - 3);
        args[n++] = tok;
    }
    args[n] = NULL;
}

static void test_dist_is_the_chart_rendering(void)
{
    setup();
    static proc p;
    char line[1024], out[PATH_MAX + 32];
    const char *args[24];
    manifest_args(line, sizeof line, args, 24);
    int n = 0;
    while (args[n])
        n++;
    snprintf(out, sizeof out, "%s/optipod.yaml", dir);
    args[n] = "--out";
    args[n + 1] = out;
    args[n + 2] = NULL;
    ASSERT_EQ_INT(render(&p, args), 0);
    size_t la, lb;
    char *want = test_read_file(out, &la);
    char *have = test_read_file(DIST, &lb);
    int same = la == lb && memcmp(want, have, la) == 0;
    free(want);
    free(have);
    if (!same)
        test_fail(__FILE__, __LINE__,
                  DIST " differs from the chart's rendering (%s): run make manifests", out);
}

/* The whole install in one file, for one namespace, applyable in order. */
static void test_dist_holds_the_install(void)
{
    cJSON *docs = parse_file(DIST);
    static const char *const kinds[] = {"Namespace",
                                        "CustomResourceDefinition",
                                        "CustomResourceDefinition",
                                        "PodDisruptionBudget",
                                        "ServiceAccount",
                                        "ClusterRole",
                                        "ClusterRoleBinding",
                                        "Role",
                                        "RoleBinding",
                                        "Service",
                                        "Service",
                                        "Deployment",
                                        "MutatingWebhookConfiguration"};
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), (int)(sizeof kinds / sizeof kinds[0]));
    for (int i = 0; i < cJSON_GetArraySize(docs); i++) {
        const cJSON *d = cJSON_GetArrayItem(docs, i);
        ASSERT_STR_EQ(str_at(d, "kind"), kinds[i]);
        const char *k = kinds[i];
        int cluster = !strcmp(k, "Namespace") || !strcmp(k, "CustomResourceDefinition") ||
                      !strncmp(k, "ClusterRole", 11) || !strcmp(k, "MutatingWebhookConfiguration");
        if (cluster)
            ASSERT_NULL(chart_get(d, "metadata.namespace"));
        else
            ASSERT_STR_EQ(str_at(d, "metadata.namespace"), NS);
    }
    ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(docs, 0), "metadata.name"), NS);

    /* the CRDs are the repository's, unchanged, in the chart's crds/ order */
    static const char *const crds[] = {"crds/optimizationpolicies.optipod.io.yaml",
                                       "crds/optimizationrecommendations.optipod.io.yaml"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *crd_text = test_read_file(crds[i], &len);
        cJSON *crd = NULL;
        operr err = {{0}};
        ASSERT_EQ_INT(yaml2json_parse(crd_text, len, &crd, &err), 0);
        free(crd_text);
        ASSERT(cJSON_Compare(crd, cJSON_GetArrayItem(docs, 1 + i), 1));
        cJSON_Delete(crd);
    }

    /* the image it runs is the one `make image` builds for this version */
    const cJSON *dep = cJSON_GetArrayItem(docs, 11);
    const cJSON *c = cJSON_GetArrayItem(chart_get(dep, "spec.template.spec.containers"), 0);
    ASSERT_STR_EQ(str_at(c, "image"), "ghcr.io/optipod/optipod:" OPTIPOD_VERSION);
    cJSON_Delete(docs);
}

static void test_render_chart_overrides(void)
{
    setup();
    static proc p;
    char values[PATH_MAX + 32], out[PATH_MAX + 32];
    snprintf(values, sizeof values, "%s/values.yaml", dir);
    snprintf(out, sizeof out, "%s/custom.yaml", dir);
    FILE *f = fopen(values, "w");
    ASSERT_NOT_NULL(f);
    fputs("replicaCount: 3\nwebhook:\n  enabled: false\n", f);
    ASSERT_EQ_INT(fclose(f), 0);
    const char *args[] = {"--release",
                          "rel",
                          "-n",
                          "apps",
                          "-f",
                          values,
                          "--set",
                          "replicaCount=4,controller.extraArgs={--stats-interval=5m,--v=2}",
                          "--set=image.tag=dev\\,1",
                          "--out",
                          out,
                          NULL};
    ASSERT_EQ_INT(render(&p, args), 0);
    cJSON *docs = parse_file(out);
    const cJSON *dep = chart_find(docs, "Deployment", "rel");
    ASSERT_NOT_NULL(dep);
    ASSERT_EQ_INT(chart_get(dep, "spec.replicas")->valueint, 4); /* --set wins over -f */
    ASSERT_STR_EQ(str_at(dep, "metadata.namespace"), "apps");
    const cJSON *c = cJSON_GetArrayItem(chart_get(dep, "spec.template.spec.containers"), 0);
    ASSERT_STR_EQ(str_at(c, "image"), "ghcr.io/optipod/optipod:dev,1");
    int seen = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(c, "args")) seen +=
        cJSON_IsString(a) &&
        (!strcmp(a->valuestring, "--stats-interval=5m") || !strcmp(a->valuestring, "--v=2"));
    ASSERT_EQ_INT(seen, 2);
    ASSERT_EQ_INT(chart_count(docs, "MutatingWebhookConfiguration"), 0);
    ASSERT_EQ_INT(chart_count(docs, "Namespace"), 0);
    ASSERT_EQ_INT(chart_count(docs, "CustomResourceDefinition"), 0);
    cJSON_Delete(docs);
    size_t len;
    char *text = test_read_file(out, &len);
    ASSERT_STR_CONTAINS(text, "Values: values.yaml with the overrides above.");
    ASSERT(!strstr(text, "--out"));
    free(text);
}

static void test_render_chart_errors(void)
{
    setup();
    static proc p;
    const char *bad_set[] = {"--set", "replicaCount", NULL};
    ASSERT_EQ_INT(render(&p, bad_set), 1);
    ASSERT_STR_CONTAINS(p.out, "--set replicaCount: expected PATH=VALUE");
    const char *open_list[] = {"--set", "a={x,y", NULL};
    ASSERT_EQ_INT(render(&p, open_list), 1);
    ASSERT_STR_CONTAINS(p.out, "unclosed {");
    const char *no_file[] = {"-f", "/nonexistent/v.yaml", NULL};
    ASSERT_EQ_INT(render(&p, no_file), 1);
    ASSERT_STR_CONTAINS(p.out, "-f /nonexistent/v.yaml: No such file");
    const char *no_chart[] = {"--chart", "/nonexistent", NULL};
    ASSERT_EQ_INT(render(&p, no_chart), 1);
    ASSERT_STR_CONTAINS(p.out, "/nonexistent/Chart.yaml");
    /* a value the templates print must keep its type: a bool where a string goes is
     * fine, a missing value is named */
    const char *wrong_type[] = {"--set", "webhook.enabled=maybe", NULL};
    ASSERT_EQ_INT(render(&p, wrong_type), 1);
    ASSERT_STR_CONTAINS(p.out, "webhook.enabled");
    const char *unknown[] = {"--frobnicate", NULL};
    ASSERT_EQ_INT(render(&p, unknown), 2);
    const char *extra[] = {"charts/optipod", NULL};
    ASSERT_EQ_INT(render(&p, extra), 2);
    ASSERT_STR_CONTAINS(p.out, "unexpected argument");
    /* --out into a directory that does not exist: an error, no file */
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/missing/x.yaml", dir);
    const char *bad_out[] = {"--out", out, NULL};
    ASSERT_EQ_INT(render(&p, bad_out), 1);
    ASSERT_STR_CONTAINS(p.out, "/missing/x.yaml");
    ASSERT(access(out, F_OK) != 0);
}

/* What make dist runs (test/dist.sh), on this build, into the test's directory, with a copy
 * of the committed manifest. */
static void make_dist(proc *p, char *manifest, size_t mcap, char *archive, size_t acap)
{
    const char *b = getenv("OPTIPOD_BUILD");
    char cmd[4 * PATH_MAX];
    snprintf(manifest, mcap, "%s/optipod-plugin.yaml", dir);
    snprintf(archive, acap, "%s/dist/kubectl-optipod_%s_linux_amd64.tar.gz", dir, OPTIPOD_VERSION);
    snprintf(cmd, sizeof cmd, "cp plugins/optipod.yaml '%s' && test/dist.sh '%s' %s '%s/dist' '%s'",
             manifest, b && *b ? b : "build/rel", OPTIPOD_VERSION, dir, manifest);
    char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    proc_start(p, argv);
    if (proc_wait_exit(p, 120) != 0)
        test_fail(__FILE__, __LINE__, "test/dist.sh: %s", p->out);
}

static void test_make_dist_and_the_krew_manifest(void)
{
    setup();
    static proc p;
    char manifest[PATH_MAX + 32], archive[PATH_MAX + 64];
    make_dist(&p, manifest, sizeof manifest, archive, sizeof archive);
    ASSERT_STR_CONTAINS(p.out, "krew: optipod v" OPTIPOD_VERSION ", sha256 ");
    ASSERT_STR_CONTAINS(p.out, "files kubectl-optipod LICENSE; bin kubectl-optipod");

    /* the archive: the binaries and the licence, nothing else */
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "tar -tzf '%s'", archive);
    char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    proc_start(&p, argv);
    ASSERT_EQ_INT(proc_wait_exit(&p, 30), 0);
    ASSERT_STR_EQ(p.out, "./\n./LICENSE\n./kubectl-optipod\n./optipod\n");

    /* the committed manifest is make dist's, but for the sha256 line */
    size_t la, lb;
    char *built = test_read_file(manifest, &la), *committed = test_read_file(DIST_PLUGIN, &lb);
    char *bs = strstr(built, "sha256: "), *cs = strstr(committed, "sha256: ");
    ASSERT(bs && cs);
    size_t bpre = (size_t)(bs - built), cpre = (size_t)(cs - committed);
    const char *bend = strchr(bs, '\n'), *cend = strchr(cs, '\n');
    int same = bpre == cpre && !memcmp(built, committed, bpre) && bend && cend &&
               !strcmp(bend, cend) && cend - cs == 8 + 64;
    free(built);
    free(committed);
    if (!same)
        test_fail(__FILE__, __LINE__,
                  DIST_PLUGIN " differs from what make dist writes (%s) beyond the sha256",
                  manifest);

    /* the .sha256 file names the same digest */
    char sumfile[PATH_MAX + 80];
    snprintf(sumfile, sizeof sumfile, "%s.sha256", archive);
    char *sum = test_read_file(sumfile, NULL);
    built = test_read_file(manifest, NULL);
    char digest[65];
    snprintf(digest, sizeof digest, "%.64s", sum);
    ASSERT_STR_CONTAINS(built, digest);
    ASSERT_STR_CONTAINS(sum, "  kubectl-optipod_" OPTIPOD_VERSION "_linux_amd64.tar.gz\n");
    free(sum);
    free(built);
}

/* krew_check [--update] on the committed manifest with `from` replaced by `to`, against
 * archive; returns its exit status. */
static int krew_check(proc *p, int update, const char *archive, const char *from, const char *to)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/edited.yaml", dir);
    size_t len;
    char *t = test_read_file(DIST_PLUGIN, &len);
    char *at = strstr(t, from);
    ASSERT_NOT_NULL(at);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fprintf(f, "%.*s%s%s", (int)(at - t), t, to, at + strlen(from));
    ASSERT_EQ_INT(fclose(f), 0);
    free(t);
    char *argv[] = {(char *)test_built("tools/krew_check"),
                    "--update",
                    path,
                    (char *)archive,
                    OPTIPOD_VERSION,
                    NULL};
    if (!update) /* drop --update */
        memmove(argv + 1, argv + 2, 4 * sizeof *argv);
    proc_start(p, argv);
    return proc_wait_exit(p, 30);
}

static void test_krew_check_refuses_a_mismatch(void)
{
    setup();
    static proc p;
    char manifest[PATH_MAX + 32], archive[PATH_MAX + 64];
    make_dist(&p, manifest, sizeof manifest, archive, sizeof archive);
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "kind: Plugin", "kind: Plugin"), 0);
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "version: v" OPTIPOD_VERSION, "version: v9.9.9"), 1);
    ASSERT_STR_CONTAINS(p.out, "spec.version is 'v9.9.9'");
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "download/v", "download/x"), 1);
    ASSERT_STR_CONTAINS(p.out, "does not end in /v" OPTIPOD_VERSION "/kubectl-optipod_");
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "from: LICENSE", "from: README.md"), 1);
    ASSERT_STR_CONTAINS(p.out, "files: 'README.md' is not in");
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "bin: kubectl-optipod", "bin: LICENSE"), 1);
    ASSERT_STR_CONTAINS(p.out, "bin 'LICENSE' is not an executable");
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "arch: amd64", "arch: arm64"), 1);
    ASSERT_STR_CONTAINS(p.out, "arch amd64");
    ASSERT_EQ_INT(krew_check(&p, 1, archive, "sha256: ", "sha256: 1\n      sha256: "), 1);
    ASSERT_STR_CONTAINS(p.out, "2 sha256 lines, expected one");
    /* without --update, a sha256 that is not the archive's; an archive that is none */
    ASSERT_EQ_INT(krew_check(&p, 0, archive, "sha256: ", "sha256: 0"), 1);
    ASSERT_STR_CONTAINS(p.out, "(make dist rewrites it)");
    char junk[PATH_MAX + 32];
    snprintf(junk, sizeof junk, "%s/junk.tar.gz", dir);
    FILE *f = fopen(junk, "w");
    ASSERT_NOT_NULL(f);
    fputs("not an archive", f);
    ASSERT_EQ_INT(fclose(f), 0);
    ASSERT_EQ_INT(krew_check(&p, 1, junk, "kind: Plugin", "kind: Plugin"), 1);
    ASSERT_STR_CONTAINS(p.out, "not a gzipped tar archive");
}

int main(void)
{
    TEST_RUN(test_dist_is_the_chart_rendering);
    TEST_RUN(test_dist_holds_the_install);
    TEST_RUN(test_render_chart_overrides);
    TEST_RUN(test_render_chart_errors);
    TEST_RUN(test_make_dist_and_the_krew_manifest);
    TEST_RUN(test_krew_check_refuses_a_mismatch);
    return test_summary();
}
