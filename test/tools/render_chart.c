/*
 * render_chart: the optipod chart as Kubernetes manifests where Helm is absent,
 * with the renderer of the chart's template subset (test/support/chart.h),
 * which renders exactly what Helm does for the syntax the chart may use.
 *
 *   render_chart [--chart DIR] [--release NAME] [-n NAMESPACE] [--include-crds]
 *                [--create-namespace] [-f VALUES.yaml]... [--set PATH=VALUE]...
 *                [--out FILE]
 *
 * Like `helm template NAME DIR -n NAMESPACE [--include-crds]`: the documents in
 * Helm's install order, each after "# Source:"; --create-namespace puts the
 * Namespace `helm install --create-namespace` would create first. Values:
 * values.yaml, then each -f file, then each --set, merged as Helm merges them
 * (maps key by key, anything else replaced). --set takes Helm's common forms:
 * a.b=v (true/false/null/integers typed, anything else a string), several
 * pairs separated by commas (\, for a literal comma), and a={x,y} for a list.
 *
 * The stream starts with a comment naming the chart, its versions and the
 * arguments (so a committed copy says how to regenerate it); --out writes it
 * to a temporary file renamed into place, never a half-written file. Errors
 * name the file, line or flag at fault, exit 1; bad usage exits 2.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/chart.h"
#include "util/flags.h"
#include "util/yaml2json.h"

#define RC_MAX_LIST 64

static const char *values_v[RC_MAX_LIST], *sets_v[RC_MAX_LIST];
static struct {
    const char *chart, *release, *ns, *out;
    int crds, create_ns, help;
    opflag_list values, sets;
} g = {.chart = "charts/optipod",
       .release = "optipod",
       .ns = "default",
       .values = {values_v, 0, RC_MAX_LIST},
       .sets = {sets_v, 0, RC_MAX_LIST}};

static const opflag flags[] = {
    {"chart", 0, OPFLAG_STRING, &g.chart, "the chart directory (default charts/optipod)"},
    {"release", 0, OPFLAG_STRING, &g.release, "the release name (default optipod)"},
    {"namespace", 'n', OPFLAG_STRING, &g.ns, "the release namespace (default: default)"},
    {"include-crds", 0, OPFLAG_BOOL, &g.crds, "the chart's crds/ first, as Helm reads them"},
    {"create-namespace", 0, OPFLAG_BOOL, &g.create_ns,
     "a Namespace object for the release namespace, before everything"},
    {"values", 'f', OPFLAG_LIST, &g.values, "a values file over values.yaml (repeatable)"},
    {"set", 0, OPFLAG_LIST, &g.sets, "PATH=VALUE over the values (repeatable)"},
    {"out", 'o', OPFLAG_STRING, &g.out, "write here instead of stdout"},
    {"help", 'h', OPFLAG_BOOL, &g.help, "show this help"},
};
#define NFLAGS (int)(sizeof flags / sizeof flags[0])

/* A --set value as Helm types it. */
static cJSON *rc_scalar(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "false"))
        return cJSON_CreateBool(!strcmp(s, "true"));
    if (!strcmp(s, "null"))
        return cJSON_CreateNull();
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s && !*end && !errno && (s[0] != '0' || !s[1]) && n > -(1LL << 53) && n < (1LL << 53))
        return cJSON_CreateNumber((double)n);
    return cJSON_CreateString(s);
}

/* Set one dotted path to a value (taking ownership of v). */
static int rc_set_path(cJSON *root, const char *path, cJSON *v, operr *err)
{
    cJSON *cur = root;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[256];
        if (n == 0 || n >= sizeof key) {
            cJSON_Delete(v);
            return operr_set(err, -EINVAL, "--set %s: an empty or overlong key", path);
        }
        memcpy(key, p, n);
        key[n] = '\0';
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, key);
        if (!dot) {
            if (next)
                cJSON_ReplaceItemInObjectCaseSensitive(cur, key, v);
            else
                cJSON_AddItemToObject(cur, key, v);
            return 0;
        }
        if (!cJSON_IsObject(next)) {
            cJSON *obj = cJSON_CreateObject();
            if (!obj) {
                cJSON_Delete(v);
                return -ENOMEM;
            }
            if (next)
                cJSON_ReplaceItemInObjectCaseSensitive(cur, key, obj);
            else
                cJSON_AddItemToObject(cur, key, obj);
            next = obj;
        }
        cur = next;
        p = dot + 1;
    }
}

/* "a.b=1,c={x,y}" into root. */
static int rc_set(cJSON *root, const char *arg, operr *err)
{
    char buf[4096];
    size_t len = strlen(arg);
    if (len >= sizeof buf)
        return operr_set(err, -EINVAL, "--set: longer than %zu bytes", sizeof buf - 1);
    const char *p = arg;
    while (*p) {
        /* one pair: the path up to '=', the value up to an unescaped ',' outside braces */
        const char *eq = strchr(p, '=');
        if (!eq || eq == p)
            return operr_set(err, -EINVAL, "--set %s: expected PATH=VALUE", arg);
        char path[512];
        if ((size_t)(eq - p) >= sizeof path)
            return operr_set(err, -EINVAL, "--set %s: path too long", arg);
        snprintf(path, sizeof path, "%.*s", (int)(eq - p), p);
        const char *v = eq + 1;
        size_t n = 0;
        int list = *v == '{';
        if (list)
            v++;
        for (; *v && (list ? *v != '}' : *v != ','); v++) {
            if (*v == '\\' && v[1])
                v++;
            buf[n++] = *v;
        }
        buf[n] = '\0';
        cJSON *val;
        if (list) {
            if (*v != '}')
                return operr_set(err, -EINVAL, "--set %s: unclosed {", arg);
            v++;
            if (!(val = cJSON_CreateArray()))
                return -ENOMEM;
            for (char *item = buf, *next; item; item = next) {
                next = strchr(item, ',');
                if (next)
                    *next++ = '\0';
                if (*item || next)
                    cJSON_AddItemToArray(val, rc_scalar(item));
            }
        } else if (!(val = rc_scalar(buf))) {
            return -ENOMEM;
        }
        int rc = rc_set_path(root, path, val, err);
        if (rc)
            return rc;
        if (*v && *v != ',')
            return operr_set(err, -EINVAL, "--set %s: expected ',' after '}'", arg);
        p = *v ? v + 1 : v;
    }
    return 0;
}

static int rc_overrides(cJSON **out, operr *err)
{
    cJSON *all = cJSON_CreateObject();
    if (!all)
        return -ENOMEM;
    int rc = 0;
    for (int i = 0; i < g.values.n && rc == 0; i++) {
        FILE *f = fopen(g.values.v[i], "rb");
        if (!f) {
            rc = operr_set(err, -errno, "-f %s: %s", g.values.v[i], strerror(errno));
            break;
        }
        opbuf b;
        opbuf_init(&b, CHART_MAX_FILE);
        char chunk[8192];
        size_t n;
        while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
            if (opbuf_append(&b, chunk, n))
                rc = operr_set(err, -E2BIG, "-f %s: larger than %d bytes", g.values.v[i],
                               CHART_MAX_FILE);
        if (rc == 0 && ferror(f))
            rc = operr_set(err, -EIO, "-f %s: read error", g.values.v[i]);
        fclose(f);
        cJSON *v = NULL;
        if (rc == 0 && (rc = yaml2json_parse(opbuf_str(&b), b.len, &v, err)) != 0)
            operr_wrap(err, rc, "-f %s", g.values.v[i]);
        else if (rc == 0 && !cJSON_IsObject(v) && !cJSON_IsNull(v))
            rc = operr_set(err, -EINVAL, "-f %s: not a mapping of values", g.values.v[i]);
        else if (rc == 0 && cJSON_IsObject(v))
            rc = chart_merge(all, v);
        cJSON_Delete(v);
        opbuf_release(&b);
    }
    for (int i = 0; i < g.sets.n && rc == 0; i++)
        rc = rc_set(all, g.sets.v[i], err);
    if (rc) {
        cJSON_Delete(all);
        return rc;
    }
    *out = all;
    return 0;
}

/* The header: the chart, its versions, and the arguments that regenerate the stream. */
static int rc_header(opbuf *out, int argc, char **argv, operr *err)
{
    cJSON *ctx = NULL;
    int rc = chart_context(g.chart, g.release, g.ns, NULL, &ctx, err);
    if (rc)
        return rc;
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(ctx, "Chart");
    opbuf_printf(
        out,
        "# The optipod chart (%s, chart %s, app %s), rendered without Helm by\n#   render_chart",
        g.chart, cJSON_GetObjectItemCaseSensitive(ch, "Version")->valuestring,
        cJSON_GetObjectItemCaseSensitive(ch, "AppVersion")->valuestring);
    for (int i = 1; i < argc; i++) {
        /* --out says where the stream goes, not what it is */
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) {
            i++;
            continue;
        }
        if (!strncmp(argv[i], "--out=", 6))
            continue;
        opbuf_printf(out, " %s", argv[i]);
    }
    rc = opbuf_printf(out, "\n# %s\n",
                      g.values.n || g.sets.n ? "Values: values.yaml with the overrides above."
                                             : "Values: the chart's defaults (values.yaml).");
    cJSON_Delete(ctx);
    return rc ? operr_set(err, rc, "the header is too large") : 0;
}

static int rc_write(const char *path, const opbuf *b, operr *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return operr_set(err, -errno, "%s: %s", tmp, strerror(errno));
    int bad = fwrite(opbuf_str(b), 1, b->len, f) != b->len;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return operr_set(err, -e, "%s: %s", path, strerror(e));
    }
    return 0;
}

int main(int argc, char **argv)
{
    operr err = {{0}};
    int rest = 0;
    if (opflag_parse(flags, NFLAGS, argc, argv, &rest, &err)) {
        fprintf(stderr, "render_chart: %s\n", err.msg);
        return 2;
    }
    if (g.help) {
        printf("Usage: render_chart [flags]\n\nThe chart's manifests without Helm, like helm "
               "template.\n\n");
        opflag_usage(stdout, flags, NFLAGS);
        return 0;
    }
    if (rest < argc) {
        fprintf(stderr, "render_chart: unexpected argument \"%s\"\n", argv[rest]);
        return 2;
    }
    cJSON *over = NULL;
    opbuf text;
    opbuf_init(&text, 4 * CHART_MAX_FILE);
    int rc = rc_overrides(&over, &err);
    if (rc == 0)
        rc = rc_header(&text, argc, argv, &err);
    if (rc == 0)
        rc = chart_manifest(g.chart, g.release, g.ns, over,
                            (g.crds ? CHART_INCLUDE_CRDS : 0) |
                                (g.create_ns ? CHART_CREATE_NAMESPACE : 0),
                            &text, &err);
    if (rc == 0 && g.out)
        rc = rc_write(g.out, &text, &err);
    else if (rc == 0 &&
             (fwrite(opbuf_str(&text), 1, text.len, stdout) != text.len || fflush(stdout) != 0))
        rc = operr_set(&err, -EIO, "stdout: write error");
    if (rc)
        fprintf(stderr, "render_chart: %s\n", err.msg[0] ? err.msg : strerror(-rc));
    cJSON_Delete(over);
    opbuf_release(&text);
    return rc ? 1 : 0;
}
