/*
 * The container image's description, without building the image:
 * test/tools/image_config reads the repository's Containerfile (the final
 * stage runs without a shell, as a numeric non-root user, and carries the
 * binary's version) and refuses what a shell-less, non-root image cannot be;
 * it reads an OCI image layout into the same form and refuses a blob whose
 * digest or size is wrong. `make image-check` diffs the two forms for the
 * image `make image` builds.
 */
#include "test.h"
#include "support/chart.h"
#include "support/proc.h"

#include <limits.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tool, *dir;

static void setup(void)
{
    tool = test_built("tools/image_config");
    dir = test_tmpdir();
}

static int run(proc *p, const char *mode, const char *path)
{
    char *argv[] = {(char *)tool, (char *)mode, (char *)path, NULL};
    proc_start(p, argv);
    return proc_wait_exit(p, 20);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ_INT(fwrite(text, 1, len, f), len);
    ASSERT_EQ_INT(fclose(f), 0);
}

/* Run image_config containerfile on `text`; returns the exit status. */
static int containerfile(proc *p, const char *text)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/Containerfile", dir);
    write_file(path, text, strlen(text));
    return run(p, "containerfile", path);
}

static void test_repository_containerfile(void)
{
    setup();
    static proc p;
    ASSERT_EQ_INT(run(&p, "containerfile", "Containerfile"), 0);
    ASSERT_STR_EQ(p.out,
                  "user 65532:65532\n"
                  "entrypoint [\"/optipod\"]\n"
                  "label org.opencontainers.image.licenses=Apache-2.0\n"
                  "label org.opencontainers.image.source=https://github.com/optipod/optipod\n"
                  "label org.opencontainers.image.title=optipod\n"
                  "label org.opencontainers.image.version=" OPTIPOD_VERSION "\n");
}

/* The chart runs the image as the user the image names, so runAsNonRoot holds for it. */
static void test_chart_runs_as_the_image_user(void)
{
    cJSON *docs = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(
        chart_render("charts/optipod", "optipod", "optipod-system", NULL, NULL, &docs, &err), 0);
    const cJSON *sc =
        chart_get(chart_find(docs, "Deployment", "optipod"), "spec.template.spec.securityContext");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(sc, "runAsUser");
    const cJSON *gid = cJSON_GetObjectItemCaseSensitive(sc, "runAsGroup");
    ASSERT(cJSON_IsNumber(uid) && cJSON_IsNumber(gid));
    char want[64];
    snprintf(want, sizeof want, "user %d:%d\n", uid->valueint, gid->valueint);
    cJSON_Delete(docs);
    setup();
    static proc p;
    ASSERT_EQ_INT(run(&p, "containerfile", "Containerfile"), 0);
    ASSERT_STR_CONTAINS(p.out, want);
}

static void test_containerfile_forms(void)
{
    setup();
    static proc p;
    /* continuations, comments between them, quoting, later labels win, build-stage
     * settings ignored, ports normalized */
    ASSERT_EQ_INT(containerfile(&p, "# syntax=docker/dockerfile:1\n"
                                    "ARG V=1\n"
                                    "FROM debian:bookworm-slim AS build\n"
                                    "USER 0\n"
                                    "RUN make \\\n"
                                    "# a comment inside\n"
                                    "    all\n"
                                    "FROM scratch\n"
                                    "COPY --from=build /root/ /\n"
                                    "LABEL a=1 \"b c\"=\"two words\" \\\n"
                                    "      d=\"q\\\"uote\"\n"
                                    "LABEL a=3\n"
                                    "ENV TZ=UTC\n"
                                    "EXPOSE 8080 9443/tcp\n"
                                    "WORKDIR /\n"
                                    "USER 1000:1000\n"
                                    "CMD [ \"--v\", \"2\" ]\n"
                                    "ENTRYPOINT [\"/optipod\"]\n"),
                  0);
    ASSERT_STR_EQ(p.out, "user 1000:1000\n"
                         "entrypoint [\"/optipod\"]\n"
                         "cmd [\"--v\",\"2\"]\n"
                         "workdir /\n"
                         "env TZ=UTC\n"
                         "expose 8080/tcp\n"
                         "expose 9443/tcp\n"
                         "label a=3\n"
                         "label b c=two words\n"
                         "label d=q\"uote\n");
}

static void test_containerfile_refusals(void)
{
    setup();
    static proc p;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"FROM scratch\nCOPY --from=b / /\nRUN true\nUSER 1:1\nENTRYPOINT [\"/x\"]\n",
         "Containerfile:3: RUN in the final stage"},
        {"FROM scratch\nUSER 1:1\nENTRYPOINT /x --v 2\n", "Containerfile:3: ENTRYPOINT /x --v 2: "
                                                          "expected the exec form"},
        {"FROM scratch\nUSER 0:0\nENTRYPOINT [\"/x\"]\n", "Containerfile:2: USER 0:0: expected a "
                                                          "numeric non-root"},
        {"FROM scratch\nUSER nonroot\nENTRYPOINT [\"/x\"]\n", "USER nonroot"},
        {"FROM scratch\nUSER 1\nENTRYPOINT [\"/x\"]\n", "USER 1:"},
        {"FROM scratch\nCOPY optipod /\nUSER 1:1\nENTRYPOINT [\"/x\"]\n",
         "Containerfile:2: COPY without --from"},
        {"FROM debian:bookworm-slim\nUSER 1:1\nENTRYPOINT [\"/x\"]\n",
         "the final stage must be FROM scratch"},
        {"FROM scratch\nENTRYPOINT [\"/x\"]\n", "needs USER and ENTRYPOINT"},
        {"FROM scratch\nUSER 1:1\nENTRYPOINT [\"/x\", 2]\n", "expected the exec form"},
        {"FROM scratch\nLABEL a=\"open\nUSER 1:1\nENTRYPOINT [\"/x\"]\n",
         "Containerfile:2: LABEL: expected key=value"},
        {"FROM scratch\nUSER 1:1\nENTRYPOINT [\"/x\"] \\\n", "ends in a line continuation"},
        {"RUN x\nFROM scratch\n", "Containerfile:1: RUN before the first FROM"},
        {"# nothing\n", "no FROM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_EQ_INT(containerfile(&p, cases[i].text), 1);
        ASSERT_STR_CONTAINS(p.out, cases[i].why);
    }
    ASSERT_EQ_INT(run(&p, "containerfile", "/nonexistent/Containerfile"), 1);
    ASSERT_STR_CONTAINS(p.out, "/nonexistent/Containerfile: No such file");
    ASSERT_EQ_INT(run(&p, "inspect", "x"), 2);
}

/* ---- OCI layouts -------------------------------------------------------------------------- */

/* Store `text` as a blob; `desc` receives its descriptor's digest and size members. */
static void blob(const char *layout, const char *text, char *desc, size_t cap)
{
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ASSERT_EQ_INT(EVP_Digest(text, strlen(text), sum, &n, EVP_sha256(), NULL), 1);
    char hex[65], path[PATH_MAX + 128];
    for (unsigned i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", sum[i]);
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, hex);
    write_file(path, text, strlen(text));
    snprintf(desc, cap, "\"digest\":\"sha256:%s\",\"size\":%zu", hex, strlen(text));
}

/* A layout in dir/name with one image of that config; returns the layout path. */
static const char *layout(const char *name, const char *config, int images)
{
    static char l[PATH_MAX + 64];
    char p[PATH_MAX + 128], cdesc[256], ldesc[256], mdesc[256], manifest[1024], index[2048];
    snprintf(l, sizeof l, "%s/%s", dir, name);
    ASSERT_EQ_INT(mkdir(l, 0755), 0);
    snprintf(p, sizeof p, "%s/blobs", l);
    ASSERT_EQ_INT(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/blobs/sha256", l);
    ASSERT_EQ_INT(mkdir(p, 0755), 0);
    blob(l, config, cdesc, sizeof cdesc);
    blob(l, "not really a gzipped tar", ldesc, sizeof ldesc);
    snprintf(manifest, sizeof manifest,
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
             "vnd.oci.image.config.v1+json\",%s},\"layers\":[{\"mediaType\":\"application/"
             "vnd.oci.image.layer.v1.tar+gzip\",%s}]}",
             cdesc, ldesc);
    blob(l, manifest, mdesc, sizeof mdesc);
    const char *one = "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",%s,"
                      "\"annotations\":{\"org.opencontainers.image.ref.name\":\"ghcr.io/o/o:1\"}}";
    char d1[512];
    snprintf(d1, sizeof d1, one, mdesc);
    snprintf(index, sizeof index, "{\"schemaVersion\":2,\"manifests\":[%s%s%s]}", d1,
             images == 2 ? "," : "", images == 2 ? d1 : "");
    snprintf(p, sizeof p, "%s/index.json", l);
    write_file(p, index, strlen(index));
    return l;
}

static const char good_config[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"65532:65532\","
    "\"Entrypoint\":[\"/optipod\"],\"Env\":[\"TZ=UTC\"],\"ExposedPorts\":{\"8080/tcp\":{}},"
    "\"Labels\":{\"z\":\"1\",\"a\":\"2\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

static void test_oci_layout(void)
{
    setup();
    static proc p;
    const char *l = layout("good", good_config, 1);
    ASSERT_EQ_INT(run(&p, "config", l), 0);
    ASSERT_STR_EQ(p.out, "user 65532:65532\n"
                         "entrypoint [\"/optipod\"]\n"
                         "env TZ=UTC\n"
                         "expose 8080/tcp\n"
                         "label a=2\n"
                         "label z=1\n");
    ASSERT_EQ_INT(run(&p, "ref", l), 0);
    ASSERT_STR_EQ(p.out, "ghcr.io/o/o:1\n");
    ASSERT_EQ_INT(run(&p, "layers", l), 0);
    ASSERT_STR_CONTAINS(p.out, "/good/blobs/sha256/");

    /* a layer whose bytes changed after the manifest was written */
    char layer[PATH_MAX];
    snprintf(layer, sizeof layer, "%.*s", (int)strcspn(p.out, "\n"), p.out);
    write_file(layer, "not really a gzipped taR", 24);
    ASSERT_EQ_INT(run(&p, "layers", l), 1);
    ASSERT_STR_CONTAINS(p.out, "content hashes to sha256:");
}

static void test_oci_refusals(void)
{
    setup();
    static proc p;
    ASSERT_EQ_INT(run(&p, "config", layout("two", good_config, 2)), 1);
    ASSERT_STR_CONTAINS(p.out, "expected exactly one image");
    ASSERT_EQ_INT(run(&p, "config", layout("root", "{\"config\":{\"User\":\"0:0\"}}", 1)), 1);
    ASSERT_STR_CONTAINS(p.out, "user \"0:0\" is not a numeric non-root uid:gid");
    ASSERT_EQ_INT(run(&p, "config", layout("nouser", "{\"config\":{}}", 1)), 1);
    ASSERT_STR_CONTAINS(p.out, "user \"\" is not");
    ASSERT_EQ_INT(run(&p, "config",
                      layout("badep", "{\"config\":{\"User\":\"1:1\",\"Entrypoint\":\"/x\"}}", 1)),
                  1);
    ASSERT_STR_CONTAINS(p.out, "config.Entrypoint is not a list of strings");
    ASSERT_EQ_INT(run(&p, "config", layout("notjson", "{\"config\":", 1)), 1);
    ASSERT_STR_CONTAINS(p.out, "not a JSON object");
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/none", dir);
    ASSERT_EQ_INT(run(&p, "config", missing), 1);
    ASSERT_STR_CONTAINS(p.out, "/none/index.json: No such file");
}

int main(void)
{
    TEST_RUN(test_repository_containerfile);
    TEST_RUN(test_chart_runs_as_the_image_user);
    TEST_RUN(test_containerfile_forms);
    TEST_RUN(test_containerfile_refusals);
    TEST_RUN(test_oci_layout);
    TEST_RUN(test_oci_refusals);
    return test_summary();
}
