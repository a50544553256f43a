/*
 * The Helm chart (charts/optipod), rendered by test/support/chart.c's subset
 * renderer: the subset itself (and its refusals), the objects the chart
 * installs, RBAC that is exactly what the controller needs, the webhook
 * configuration's safety properties, a Deployment whose args the real binary
 * accepts and whose probes, ports and volumes line up, and the CRD copy.
 */
#include "test.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/chart.h"
#include "util/yaml2json.h"

#define CHART_DIR "charts/optipod"
#define REL       "opti"
#define NS        "opti-system"

/* --- helpers ----------------------------------------------------------------------------- */

static cJSON *render(const char *overrides_json, opbuf *text)
{
    cJSON *ov = NULL, *docs = NULL;
    operr err = {{0}};
    if (overrides_json) {
        ov = cJSON_Parse(overrides_json);
        ASSERT_NOT_NULL(ov);
    }
    int rc = chart_render(CHART_DIR, REL, NS, ov, text, &docs, &err);
    cJSON_Delete(ov);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "chart_render: %d: %s", rc, err.msg);
    return docs;
}

/* Render a template string against a context built from JSON values. */
static int render_str(const char *tmpl, const char *values_json, opbuf *out, operr *err)
{
    cJSON *ctx = cJSON_Parse("{\"Release\":{\"Name\":\"rel\",\"Namespace\":\"ns1\"},"
                             "\"Chart\":{\"Version\":\"1.2.3\",\"AppVersion\":\"4.5.6\"}}");
    ASSERT_NOT_NULL(ctx);
    cJSON *v = cJSON_Parse(values_json);
    ASSERT_NOT_NULL(v);
    cJSON_AddItemToObject(ctx, "Values", v);
    opbuf_reset(out);
    int rc = chart_render_text("t.yaml", tmpl, strlen(tmpl), ctx, out, err);
    cJSON_Delete(ctx);
    return rc;
}

static const char *str_at(const cJSON *obj, const char *path)
{
    const cJSON *v = chart_get(obj, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int in_str_array(const cJSON *arr, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
            return 1;
    }
    return 0;
}

static const cJSON *container(const cJSON *dep)
{
    const cJSON *cs = chart_get(dep, "spec.template.spec.containers");
    ASSERT_EQ_INT(cJSON_GetArraySize(cs), 1);
    return cJSON_GetArrayItem(cs, 0);
}

/* The value of "--name=value" in args, or NULL. */
static const char *arg_value(const cJSON *c, const char *name)
{
    size_t n = strlen(name);
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(c, "args"))
    {
        if (cJSON_IsString(a) && strncmp(a->valuestring, name, n) == 0 && a->valuestring[n] == '=')
            return a->valuestring + n + 1;
    }
    return NULL;
}

static int has_arg(const cJSON *c, const char *exact)
{
    return in_str_array(cJSON_GetObjectItemCaseSensitive(c, "args"), exact);
}

/* The port number of a ":PORT" bind address. */
static int bind_port(const char *addr)
{
    ASSERT_NOT_NULL(addr);
    const char *colon = strrchr(addr, ':');
    ASSERT_NOT_NULL(colon);
    return atoi(colon + 1);
}

/* containerPort of a port given by name or number in the container. */
static int resolve_port(const cJSON *c, const cJSON *port)
{
    if (cJSON_IsNumber(port))
        return port->valueint;
    ASSERT(cJSON_IsString(port));
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
    {
        const char *n = str_at(p, "name");
        if (n && strcmp(n, port->valuestring) == 0)
            return cJSON_GetObjectItemCaseSensitive(p, "containerPort")->valueint;
    }
    test_fail(__FILE__, __LINE__, "no container port named %s", port->valuestring);
}

/* Every key/value of `sel` (a matchLabels map) is in `labels`. */
static void assert_selects(const cJSON *sel, const cJSON *labels)
{
    ASSERT(cJSON_GetArraySize(sel) > 0);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, sel)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels, kv->string);
        if (!cJSON_IsString(l) || strcmp(l->valuestring, kv->valuestring) != 0)
            test_fail(__FILE__, __LINE__, "selector %s=%s does not match the pod labels",
                      kv->string, kv->valuestring);
    }
}

/* --- the subset renderer ------------------------------------------------------------------ */

static void test_subset_renders_like_go_templates(void)
{
    opbuf out;
    operr err = {{0}};
    opbuf_init(&out, 1 << 16);
    const char *vals = "{\"s\":\"x\",\"n\":8081,\"t\":true,\"f\":false,\"l\":[\"a\",2,true],"
                       "\"e\":[],\"q\":\"a\\\"b\\\\c\",\"o\":{\"p\":{\"r\":\"deep\"}}}";

    ASSERT_EQ_INT(render_str("a{{ .Values.s }}b {{.Values.n}}", vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "axb 8081");
    ASSERT_EQ_INT(render_str("{{ .Release.Name }}/{{ .Release.Namespace }} "
                             "{{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Values.o.p.r }}",
                             vals, &out, &err),
                  0);
    ASSERT_STR_EQ(opbuf_str(&out), "rel/ns1 1.2.3 4.5.6 deep");
    /* "{{- " eats every blank before it, newlines included; the block's own first
     * newline stays, which is what keeps the YAML lines apart. */
    const char *blk = "x:\n{{- if .Values.t }}\n  y: 1\n{{- end }}\nz: 2\n";
    ASSERT_EQ_INT(render_str(blk, vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "x:\n  y: 1\nz: 2\n");
    const char *blk_f = "x:\n{{- if .Values.f }}\n  y: 1\n{{- end }}\nz: 2\n";
    ASSERT_EQ_INT(render_str(blk_f, vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "x:\nz: 2\n");
    /* Nested blocks: the inner one only matters when the outer is true. */
    ASSERT_EQ_INT(
        render_str("{{ if .Values.t }}A{{ if .Values.f }}B{{ end }}C{{ end }}D", vals, &out, &err),
        0);
    ASSERT_STR_EQ(opbuf_str(&out), "ACD");
    ASSERT_EQ_INT(
        render_str("l:\n{{- range .Values.l }}\n  - {{ . }}\n{{- end }}\n", vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "l:\n  - a\n  - 2\n  - true\n");
    ASSERT_EQ_INT(render_str("l:{{- range .Values.e }} {{ . }}{{- end }}!", vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "l:!");
    ASSERT_EQ_INT(render_str("[{{- range .Values.l }}{{ quote . }},{{ end -}} ]", vals, &out, &err),
                  0);
    ASSERT_STR_EQ(opbuf_str(&out), "[\"a\",\"2\",\"true\",]");
    /* quote is Go's %q: quotes and backslashes escaped. */
    ASSERT_EQ_INT(render_str("v: {{ quote .Values.q }} {{ quote .Values.n }}", vals, &out, &err),
                  0);
    ASSERT_STR_EQ(opbuf_str(&out), "v: \"a\\\"b\\\\c\" \"8081\"");
    /* " -}}" eats the blanks after it; a dash without the blank is not a trim marker. */
    ASSERT_EQ_INT(render_str("a {{ .Values.s -}} \n\t b", vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "a xb");
    ASSERT_EQ_INT(render_str("no actions at all\n", vals, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "no actions at all\n");
    opbuf_release(&out);
}

static void test_subset_refuses_everything_else(void)
{
    static const struct {
        const char *tmpl, *why;
    } bad[] = {
        {"{{ include \"x\" . }}", "unsupported action"},
        {"{{ toYaml .Values.o }}", "unsupported action"},
        {"{{ .Values.s | quote }}", "unsupported action"},
        {"{{ default \"a\" .Values.s }}", "unsupported action"},
        {"{{ if .Values.t }}a{{ else }}b{{ end }}", "unsupported operand 'else'"},
        {"{{/* a comment */}}", "unsupported action"},
        {"{{ $.Values.s }}", "unsupported operand"},
        {"{{ .Values.nope }}", "'.Values.nope': no such value"},
        {"{{ .Values.o.nope }}", "no such value"},
        {"{{ .Release.Service }}", "unsupported '.Release.Service'"},
        {"{{ .Capabilities.KubeVersion }}", "unsupported"},
        {"{{ .Chart.Name }}", "unsupported"},
        {"{{ if .Values.s }}a{{ end }}", "not a boolean"},
        {"{{ range .Values.o }}a{{ end }}", "not a list"},
        {"{{ range .Values.lo }}{{ . }}{{ end }}", "items must be scalars"},
        {"{{ range .Values.l }}{{ .Values.s }}{{ end }}", "inside range"},
        {"{{ range .Values.l }}{{ if .Values.t }}{{ end }}{{ end }}", "inside range"},
        {"{{ . }}", "outside range"},
        {"{{ .Values.o }}", "not a scalar"},
        {"{{ .Values.fl }}", "only integers"},
        {"a {{ .Values.s", "unterminated"},
        {"{{ if .Values.t }}a", "has no 'end'"},
        {"a{{ end }}", "'end' without"},
        {"{{ }}", "unsupported action"},
        /* Checked even where not rendered: a typo must not hide behind a false flag. */
        {"{{ if .Values.f }}{{ .Values.typo }}{{ end }}", "no such value"},
        {"{{ range .Values.e }}{{ .Values.s }}{{ end }}", "inside range"},
    };
    const char *vals = "{\"s\":\"x\",\"t\":true,\"f\":false,\"l\":[\"a\"],\"e\":[],"
                       "\"o\":{\"p\":1},\"lo\":[{\"a\":1}],\"fl\":0.5}";
    opbuf out;
    opbuf_init(&out, 1 << 16);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        operr err = {{0}};
        int rc = render_str(bad[i].tmpl, vals, &out, &err);
        if (rc != -EINVAL || !strstr(err.msg, bad[i].why) || !strstr(err.msg, "t.yaml:1"))
            test_fail(__FILE__, __LINE__, "template %s: rc %d, err \"%s\", want \"%s\"",
                      bad[i].tmpl, rc, err.msg, bad[i].why);
    }
    /* The line of the offending action is named. */
    operr err = {{0}};
    ASSERT_EQ_INT(render_str("a: 1\nb: 2\nc: {{ .Values.zz }}\n", vals, &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "t.yaml:3:");
    opbuf_release(&out);
}

/* --- the chart's objects ------------------------------------------------------------------ */

static void test_default_render_kinds_and_names(void)
{
    cJSON *docs = render(NULL, NULL);
    static const struct {
        const char *kind, *name;
        int namespaced;
    } want[] = {
        {"ServiceAccount", REL, 1},
        {"ClusterRole", REL, 0},
        {"ClusterRoleBinding", REL, 0},
        {"Role", REL, 1},
        {"RoleBinding", REL, 1},
        {"Deployment", REL, 1},
        {"Service", REL "-webhook", 1},
        {"Service", REL "-metrics", 1},
        {"MutatingWebhookConfiguration", REL "-webhook", 0},
        {"PodDisruptionBudget", REL, 1},
    };
    size_t nwant = sizeof want / sizeof want[0];
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), nwant);
    ASSERT_EQ_INT(chart_count(docs, "ServiceMonitor"), 0);
    for (size_t i = 0; i < nwant; i++) {
        const cJSON *d = chart_find(docs, want[i].kind, want[i].name);
        if (!d)
            test_fail(__FILE__, __LINE__, "no %s %s", want[i].kind, want[i].name);
        const char *ns = str_at(d, "metadata.namespace");
        if (want[i].namespaced)
            ASSERT_STR_EQ(ns, NS);
        else
            ASSERT_NULL(ns);
        const cJSON *labels = chart_get(d, "metadata.labels");
        const cJSON *app = cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/name");
        ASSERT(cJSON_IsString(app) && strcmp(app->valuestring, "optipod") == 0);
        const cJSON *inst = cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/instance");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/version");
        ASSERT(cJSON_IsString(inst) && strcmp(inst->valuestring, REL) == 0);
        /* quoted in the template, so a version like 1.10 stays a string */
        ASSERT(cJSON_IsString(ver) && strcmp(ver->valuestring, "0.1.0") == 0);
    }
    cJSON_Delete(docs);
}

static void test_image_tag_is_app_version(void)
{
    cJSON *ctx = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(chart_context(CHART_DIR, REL, NS, NULL, &ctx, &err), 0);
    const char *app = str_at(ctx, "Chart.AppVersion");
    ASSERT_NOT_NULL(app);
    ASSERT_STR_EQ(str_at(ctx, "Values.image.tag"), app);
    /* The binary's version (the Makefile's VERSION) is the chart's appVersion. */
    ASSERT_STR_EQ(app, OPTIPOD_VERSION);
    cJSON *docs = render(NULL, NULL);
    const char *image = str_at(container(chart_find(docs, "Deployment", REL)), "image");
    ASSERT_NOT_NULL(image);
    const char *colon = strrchr(image, ':');
    ASSERT_NOT_NULL(colon);
    ASSERT_STR_EQ(colon + 1, app);
    cJSON_Delete(docs);
    cJSON_Delete(ctx);
}

/* --- RBAC --------------------------------------------------------------------------------- */

/* Every (scope, group, resource, verbs) the controller uses, from lib/kube/rest.c's KRES_*
 * table and the controller issue. "@" in a resource name is the release name. The chart
 * must grant each, and nothing that is not here. */
typedef struct need {
    const char *scope; /* "cluster" (ClusterRole) or "ns" (Role in the release namespace) */
    const char *group, *resource;
    const char *verbs;   /* space-separated */
    const char *resname; /* required resourceNames (one), or NULL for none */
    int webhook;         /* only when webhook.enabled */
} need;

static const need NEEDS[] = {
    /* KRES_DEPLOYMENTS/STATEFULSETS/DAEMONSETS: informers; SSA of resources or the
     * webhook annotations, and dryRun=All applies, are PATCH (apply-patch). */
    {"cluster", "apps", "deployments", "get list watch patch", NULL, 0},
    {"cluster", "apps", "statefulsets", "get list watch patch", NULL, 0},
    {"cluster", "apps", "daemonsets", "get list watch patch", NULL, 0},
    /* KRES_REPLICASETS: pod -> ReplicaSet -> Deployment in the cache; never written. */
    {"cluster", "apps", "replicasets", "get list watch", NULL, 0},
    /* KRES_PODS: owners, OOM kills, resize conditions; never written directly... */
    {"cluster", "", "pods", "get list watch", NULL, 0},
    /* ...except through the resize subresource (allowInPlaceResize). */
    {"cluster", "", "pods/resize", "patch", NULL, 0},
    /* KRES_NAMESPACES: policies' namespaceSelector. */
    {"cluster", "", "namespaces", "get list watch", NULL, 0},
    /* KRES_HPAS: workloads an HPA scales on CPU are skipped. */
    {"cluster", "autoscaling", "horizontalpodautoscalers", "get list watch", NULL, 0},
    /* KRES_PDBS: the rollout gate's informer (selector, disruptionsAllowed); never written. */
    {"cluster", "policy", "poddisruptionbudgets", "list watch", NULL, 0},
    /* KRES_POD_METRICS: the metrics-server provider. */
    {"cluster", "metrics.k8s.io", "pods", "get list", NULL, 0},
    /* KRES_POLICIES: the OptimizationPolicies themselves, read only... */
    {"cluster", "optipod.io", "optimizationpolicies", "get list watch", NULL, 0},
    /* ...and their status (conditions, workload counts, recommendations). */
    {"cluster", "optipod.io", "optimizationpolicies/status", "get patch update", NULL, 0},
    /* KRES_RECOMMENDATIONS: one record per managed workload, written by server-side apply
     * (patch; create when the apply makes it), read back on start (list) so an unchanged
     * record is not rewritten, and deleted when its workload leaves every policy. */
    {"cluster", "optipod.io", "optimizationrecommendations", "list create patch delete", NULL, 0},
    /* KRES_CONFIGMAPS: the metrics-server checkpoints (controller/ckpt.h): server-side
     * apply creates (create, not name-scoped) or updates (patch), reads by name (get). */
    {"cluster", "", "configmaps", "create", NULL, 0},
    {"cluster", "", "configmaps", "get patch", "@-usage-checkpoint", 0},
    /* KRES_EVENTS: new Events, and series patches on repeats. */
    {"cluster", "events.k8s.io", "events", "create patch", NULL, 0},
    /* KRES_MUTATING_WEBHOOKS: caBundle of the chart's own configuration only. */
    {"cluster", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch",
     "@-webhook", 1},
    /* KRES_LEASES: leader election (--leader-elect), in the release namespace. */
    {"ns", "coordination.k8s.io", "leases", "get create update", NULL, 0},
    /* KRES_SECRETS: the webhook's certificate Secret. create cannot be name-scoped... */
    {"ns", "", "secrets", "create", NULL, 1},
    /* ...everything else is, to that one Secret. */
    {"ns", "", "secrets", "get update patch", "@-webhook-tls", 1},
};

/* Position of `verb` in a space-separated list, or -1. */
static int verb_index(const char *list, const char *verb)
{
    size_t n = strlen(verb);
    int i = 0;
    for (const char *p = list; *p; i++) {
        size_t w = strcspn(p, " ");
        if (w == n && strncmp(p, verb, n) == 0)
            return i;
        p += w;
        while (*p == ' ')
            p++;
    }
    return -1;
}

static const need *find_need(const char *scope, const char *group, const char *res,
                             const char *verb, const char *resname, int webhook_on)
{
    for (size_t i = 0; i < sizeof NEEDS / sizeof NEEDS[0]; i++) {
        const need *n = &NEEDS[i];
        if ((n->webhook && !webhook_on) || strcmp(n->scope, scope) != 0 ||
            strcmp(n->group, group) != 0 || strcmp(n->resource, res) != 0)
            continue;
        char rn[256] = "";
        if (n->resname)
            snprintf(rn, sizeof rn, "%s%s", REL, n->resname + 1);
        if ((resname == NULL) != (n->resname == NULL) || (resname && strcmp(rn, resname) != 0))
            continue;
        if (verb_index(n->verbs, verb) >= 0)
            return n;
    }
    return NULL;
}

/* Walks every rule of the Role or ClusterRole: checks it against NEEDS and marks what it
 * grants in `got` (indexed like NEEDS, one bit per verb position). */
static void check_rules(const cJSON *role, const char *scope, int webhook_on, unsigned got[])
{
    ASSERT_NOT_NULL(role);
    const cJSON *rule;
    cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(role, "rules"))
    {
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(rule, "nonResourceURLs"));
        const cJSON *groups = cJSON_GetObjectItemCaseSensitive(rule, "apiGroups");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(rule, "resources");
        const cJSON *verbs = cJSON_GetObjectItemCaseSensitive(rule, "verbs");
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(rule, "resourceNames");
        ASSERT(cJSON_GetArraySize(groups) > 0 && cJSON_GetArraySize(res) > 0 &&
               cJSON_GetArraySize(verbs) > 0);
        ASSERT(!names || cJSON_GetArraySize(names) == 1);
        const char *resname = names ? cJSON_GetArrayItem(names, 0)->valuestring : NULL;
        const cJSON *g, *r, *v;
        cJSON_ArrayForEach(g, groups)
        {
            cJSON_ArrayForEach(r, res)
            {
                cJSON_ArrayForEach(v, verbs)
                {
                    ASSERT(cJSON_IsString(g) && cJSON_IsString(r) && cJSON_IsString(v));
                    if (strchr(g->valuestring, '*') || strchr(r->valuestring, '*') ||
                        strchr(v->valuestring, '*'))
                        test_fail(__FILE__, __LINE__, "%s grants a wildcard: %s/%s %s", scope,
                                  g->valuestring, r->valuestring, v->valuestring);
                    if (strcmp(scope, "cluster") == 0 && strcmp(g->valuestring, "") == 0 &&
                        strcmp(r->valuestring, "secrets") == 0)
                        test_fail(__FILE__, __LINE__, "Secrets granted cluster-wide");
                    const need *n = find_need(scope, g->valuestring, r->valuestring, v->valuestring,
                                              resname, webhook_on);
                    if (!n)
                        test_fail(__FILE__, __LINE__,
                                  "%s grants '%s' on %s/%s (resourceNames %s): not needed", scope,
                                  v->valuestring, g->valuestring, r->valuestring,
                                  resname ? resname : "-");
                    got[n - NEEDS] |= 1u << verb_index(n->verbs, v->valuestring);
                }
            }
        }
    }
}

static void check_rbac(const cJSON *docs, int webhook_on)
{
    unsigned got[sizeof NEEDS / sizeof NEEDS[0]] = {0};
    check_rules(chart_find(docs, "ClusterRole", REL), "cluster", webhook_on, got);
    check_rules(chart_find(docs, "Role", REL), "ns", webhook_on, got);
    ASSERT_EQ_INT(chart_count(docs, "ClusterRole"), 1);
    ASSERT_EQ_INT(chart_count(docs, "Role"), 1);
    for (size_t i = 0; i < sizeof NEEDS / sizeof NEEDS[0]; i++) {
        const need *n = &NEEDS[i];
        int nverbs = 1;
        for (const char *p = n->verbs; *p; p++)
            nverbs += *p == ' ';
        unsigned want = (n->webhook && !webhook_on) ? 0 : (1u << nverbs) - 1;
        if (got[i] != want)
            test_fail(__FILE__, __LINE__, "%s %s/%s: verbs \"%s\" granted as mask %#x, want %#x",
                      n->scope, n->group, n->resource, n->verbs, got[i], want);
    }
    /* The bindings give exactly these roles to the chart's ServiceAccount. */
    static const char *const bind[][2] = {{"ClusterRoleBinding", "ClusterRole"},
                                          {"RoleBinding", "Role"}};
    for (int i = 0; i < 2; i++) {
        const cJSON *b = chart_find(docs, bind[i][0], REL);
        ASSERT_NOT_NULL(b);
        ASSERT_STR_EQ(str_at(b, "roleRef.kind"), bind[i][1]);
        ASSERT_STR_EQ(str_at(b, "roleRef.name"), REL);
        ASSERT_STR_EQ(str_at(b, "roleRef.apiGroup"), "rbac.authorization.k8s.io");
        const cJSON *subs = cJSON_GetObjectItemCaseSensitive(b, "subjects");
        ASSERT_EQ_INT(cJSON_GetArraySize(subs), 1);
        const cJSON *s = cJSON_GetArrayItem(subs, 0);
        ASSERT_STR_EQ(str_at(s, "kind"), "ServiceAccount");
        ASSERT_STR_EQ(str_at(s, "name"), REL);
        ASSERT_STR_EQ(str_at(s, "namespace"), NS);
    }
    ASSERT_NOT_NULL(chart_find(docs, "ServiceAccount", REL));
    ASSERT_STR_EQ(
        str_at(chart_find(docs, "Deployment", REL), "spec.template.spec.serviceAccountName"), REL);
}

static void test_rbac_is_exactly_what_the_controller_needs(void)
{
    cJSON *docs = render(NULL, NULL);
    check_rbac(docs, 1);
    /* The names RBAC allows are the objects the chart creates. */
    ASSERT_NOT_NULL(chart_find(docs, "MutatingWebhookConfiguration", REL "-webhook"));
    const cJSON *c = container(chart_find(docs, "Deployment", REL));
    ASSERT_STR_EQ(arg_value(c, "--leader-election-namespace"), NS);
    ASSERT_STR_EQ(arg_value(c, "--leader-election-id"), REL "-leader");
    cJSON_Delete(docs);
    /* With cert-manager the rules are the same (the subset has no `not`); the Secret and
     * caBundle rules then go unused, which README.md says. */
    docs = render("{\"webhook\":{\"certManager\":{\"enabled\":true}}}", NULL);
    check_rbac(docs, 1);
    cJSON_Delete(docs);
    docs = render("{\"webhook\":{\"enabled\":false}}", NULL);
    check_rbac(docs, 0);
    cJSON_Delete(docs);
}

/* --- the webhook configuration ------------------------------------------------------------- */

static void test_webhook_configuration_is_safe(void)
{
    cJSON *docs =
        render("{\"webhook\":{\"excludeNamespaces\":[\"istio-system\",\"argocd\"]}}", NULL);
    const cJSON *mwc = chart_find(docs, "MutatingWebhookConfiguration", REL "-webhook");
    ASSERT_NOT_NULL(mwc);
    ASSERT_STR_EQ(str_at(mwc, "apiVersion"), "admissionregistration.k8s.io/v1");
    const cJSON *whs = cJSON_GetObjectItemCaseSensitive(mwc, "webhooks");
    ASSERT_EQ_INT(cJSON_GetArraySize(whs), 1);
    const cJSON *w = cJSON_GetArrayItem(whs, 0);
    ASSERT_STR_EQ(str_at(w, "name"), "pods.optipod.io");
    const cJSON *arv = cJSON_GetObjectItemCaseSensitive(w, "admissionReviewVersions");
    ASSERT_EQ_INT(cJSON_GetArraySize(arv), 1);
    ASSERT(in_str_array(arv, "v1"));
    ASSERT_STR_EQ(str_at(w, "sideEffects"), "None");
    ASSERT_STR_EQ(str_at(w, "failurePolicy"), "Ignore");
    ASSERT_STR_EQ(str_at(w, "reinvocationPolicy"), "Never");
    ASSERT_STR_EQ(str_at(w, "matchPolicy"), "Equivalent");
    const cJSON *to = chart_get(w, "timeoutSeconds");
    ASSERT(cJSON_IsNumber(to));
    ASSERT_CMP_INT(to->valueint, >=, 1);
    ASSERT_CMP_INT(to->valueint, <=, 5);
    /* caBundle is the controller's to patch; the chart never pins one. */
    ASSERT_NULL(chart_get(w, "clientConfig.caBundle"));
    ASSERT_NULL(chart_get(w, "clientConfig.url"));

    /* rules: pods, CREATE, core v1, nothing else */
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(w, "rules");
    ASSERT_EQ_INT(cJSON_GetArraySize(rules), 1);
    const cJSON *r = cJSON_GetArrayItem(rules, 0);
    const char *keys[][2] = {
        {"apiGroups", ""}, {"apiVersions", "v1"}, {"operations", "CREATE"}, {"resources", "pods"}};
    for (int i = 0; i < 4; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, keys[i][0]);
        ASSERT_EQ_INT(cJSON_GetArraySize(a), 1);
        ASSERT_STR_EQ(cJSON_GetArrayItem(a, 0)->valuestring, keys[i][1]);
    }

    /* namespaceSelector: opt-in label AND never the release namespace or kube-system (nor
     * the extra exclusions). */
    const cJSON *ml = chart_get(w, "namespaceSelector.matchLabels");
    ASSERT_EQ_INT(cJSON_GetArraySize(ml), 1);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(ml, "optipod.io/webhook")->valuestring,
                  "enabled");
    const cJSON *me = chart_get(w, "namespaceSelector.matchExpressions");
    ASSERT_EQ_INT(cJSON_GetArraySize(me), 1);
    const cJSON *e = cJSON_GetArrayItem(me, 0);
    ASSERT_STR_EQ(str_at(e, "key"), "kubernetes.io/metadata.name");
    ASSERT_STR_EQ(str_at(e, "operator"), "NotIn");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(e, "values");
    ASSERT_EQ_INT(cJSON_GetArraySize(vals), 4);
    ASSERT(in_str_array(vals, NS));
    ASSERT(in_str_array(vals, "kube-system"));
    ASSERT(in_str_array(vals, "istio-system"));
    ASSERT(in_str_array(vals, "argocd"));
    /* objectSelector: never optipod's own pods (the Deployment's pod labels). */
    const cJSON *oe = cJSON_GetArrayItem(chart_get(w, "objectSelector.matchExpressions"), 0);
    ASSERT_NOT_NULL(oe);
    ASSERT_STR_EQ(str_at(oe, "operator"), "NotIn");
    const cJSON *dep = chart_find(docs, "Deployment", REL);
    const cJSON *plabels = chart_get(dep, "spec.template.metadata.labels");
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(plabels, str_at(oe, "key"));
    ASSERT(cJSON_IsString(own));
    ASSERT(in_str_array(cJSON_GetObjectItemCaseSensitive(oe, "values"), own->valuestring));

    /* clientConfig.service -> Service :443 -> the container's webhook port (--webhook-port). */
    ASSERT_STR_EQ(str_at(w, "clientConfig.service.namespace"), NS);
    ASSERT_STR_EQ(str_at(w, "clientConfig.service.path"), "/mutate-pods");
    ASSERT_EQ_INT(chart_get(w, "clientConfig.service.port")->valueint, 443);
    const cJSON *svc = chart_find(docs, "Service", str_at(w, "clientConfig.service.name"));
    ASSERT_NOT_NULL(svc);
    assert_selects(chart_get(svc, "spec.selector"), plabels);
    const cJSON *sp = cJSON_GetArrayItem(chart_get(svc, "spec.ports"), 0);
    ASSERT_EQ_INT(chart_get(sp, "port")->valueint, 443);
    const cJSON *c = container(dep);
    ASSERT_EQ_INT(resolve_port(c, chart_get(sp, "targetPort")),
                  atoi(arg_value(c, "--webhook-port")));
    cJSON_Delete(docs);
}

/* --- the Deployment ----------------------------------------------------------------------- */

static void test_deployment_is_hardened_and_wired(void)
{
    cJSON *docs = render(NULL, NULL);
    const cJSON *dep = chart_find(docs, "Deployment", REL);
    ASSERT_NOT_NULL(dep);
    const cJSON *spec = chart_get(dep, "spec.template.spec");
    const cJSON *c = container(dep);
    /* Two replicas, and so leader election. */
    ASSERT_EQ_INT(chart_get(dep, "spec.replicas")->valueint, 2);
    ASSERT(has_arg(c, "--leader-elect=true"));
    ASSERT(!has_arg(c, "--dry-run"));
    assert_selects(chart_get(dep, "spec.selector.matchLabels"),
                   chart_get(dep, "spec.template.metadata.labels"));
    /* Pod and container security. */
    ASSERT(cJSON_IsTrue(chart_get(spec, "securityContext.runAsNonRoot")));
    ASSERT_CMP_INT(chart_get(spec, "securityContext.runAsUser")->valueint, >, 0);
    ASSERT_STR_EQ(str_at(spec, "securityContext.seccompProfile.type"), "RuntimeDefault");
    ASSERT(cJSON_IsTrue(chart_get(c, "securityContext.readOnlyRootFilesystem")));
    ASSERT(cJSON_IsFalse(chart_get(c, "securityContext.allowPrivilegeEscalation")));
    const cJSON *drop = chart_get(c, "securityContext.capabilities.drop");
    ASSERT_EQ_INT(cJSON_GetArraySize(drop), 1);
    ASSERT(in_str_array(drop, "ALL"));
    ASSERT_NULL(chart_get(c, "securityContext.capabilities.add"));
    ASSERT_NULL(chart_get(c, "securityContext.privileged"));
    /* Requests and limits for both resources. */
    static const char *const res[] = {"resources.requests.cpu", "resources.requests.memory",
                                      "resources.limits.cpu", "resources.limits.memory"};
    for (int i = 0; i < 4; i++)
        if (!str_at(c, res[i]))
            test_fail(__FILE__, __LINE__, "container has no %s", res[i]);
    /* Probes on the port --health-probe-bind-address binds. */
    int probe_port = bind_port(arg_value(c, "--health-probe-bind-address"));
    ASSERT_EQ_INT(resolve_port(c, chart_get(c, "livenessProbe.httpGet.port")), probe_port);
    ASSERT_EQ_INT(resolve_port(c, chart_get(c, "readinessProbe.httpGet.port")), probe_port);
    ASSERT_STR_EQ(str_at(c, "livenessProbe.httpGet.path"), "/healthz");
    ASSERT_STR_EQ(str_at(c, "readinessProbe.httpGet.path"), "/readyz");
    /* Metrics Service -> the metrics port. */
    int metrics_port = bind_port(arg_value(c, "--metrics-bind-address"));
    const cJSON *msvc = chart_find(docs, "Service", REL "-metrics");
    ASSERT_NOT_NULL(msvc);
    assert_selects(chart_get(msvc, "spec.selector"),
                   chart_get(dep, "spec.template.metadata.labels"));
    ASSERT_EQ_INT(resolve_port(c, chart_get(cJSON_GetArrayItem(chart_get(msvc, "spec.ports"), 0),
                                            "targetPort")),
                  metrics_port);
    /* Without cert-manager the controller makes its own certificate: no cert dir. The
     * root filesystem is read-only, so /tmp is the one writable mount. */
    ASSERT_NOT_NULL(arg_value(c, "--webhook-port"));
    ASSERT_NULL(arg_value(c, "--webhook-cert-dir"));
    const cJSON *mounts = chart_get(c, "volumeMounts");
    ASSERT_EQ_INT(cJSON_GetArraySize(mounts), 1);
    ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(mounts, 0), "mountPath"), "/tmp");
    ASSERT_EQ_INT(cJSON_GetArraySize(chart_get(spec, "volumes")), 1);
    /* SIGTERM: the grace period outlasts --shutdown-timeout. */
    ASSERT_STR_EQ(arg_value(c, "--shutdown-timeout"), "10s");
    ASSERT_CMP_INT(chart_get(spec, "terminationGracePeriodSeconds")->valueint, >, 10);
    /* One replica always stays through a drain. */
    const cJSON *pdb = chart_find(docs, "PodDisruptionBudget", REL);
    ASSERT_NOT_NULL(pdb);
    ASSERT_EQ_INT(chart_get(pdb, "spec.minAvailable")->valueint, 1);
    assert_selects(chart_get(pdb, "spec.selector.matchLabels"),
                   chart_get(dep, "spec.template.metadata.labels"));
    cJSON_Delete(docs);
}

static void test_cert_manager_mode(void)
{
    cJSON *docs = render("{\"webhook\":{\"certManager\":{\"enabled\":true}}}", NULL);
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), 12);
    const cJSON *iss = chart_find(docs, "Issuer", REL "-selfsigned");
    const cJSON *crt = chart_find(docs, "Certificate", REL "-webhook");
    ASSERT_NOT_NULL(iss);
    ASSERT_NOT_NULL(crt);
    ASSERT_STR_EQ(str_at(crt, "apiVersion"), "cert-manager.io/v1");
    ASSERT_STR_EQ(str_at(crt, "metadata.namespace"), NS);
    ASSERT_STR_EQ(str_at(crt, "spec.issuerRef.kind"), "Issuer");
    ASSERT_STR_EQ(str_at(crt, "spec.issuerRef.name"), REL "-selfsigned");
    ASSERT_NOT_NULL(chart_get(iss, "spec.selfSigned"));
    /* valid for the name the API server dials: <service>.<namespace>.svc */
    const cJSON *mwc = chart_find(docs, "MutatingWebhookConfiguration", REL "-webhook");
    const cJSON *w = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mwc, "webhooks"), 0);
    char dns[256];
    snprintf(dns, sizeof dns, "%s.%s.svc", str_at(w, "clientConfig.service.name"),
             str_at(w, "clientConfig.service.namespace"));
    ASSERT(in_str_array(chart_get(crt, "spec.dnsNames"), dns));
    /* the CA injector is pointed at that Certificate */
    const cJSON *inj = cJSON_GetObjectItemCaseSensitive(chart_get(mwc, "metadata.annotations"),
                                                        "cert-manager.io/inject-ca-from");
    ASSERT(cJSON_IsString(inj));
    ASSERT_STR_EQ(inj->valuestring, NS "/" REL "-webhook");
    ASSERT_NULL(chart_get(w, "clientConfig.caBundle"));
    /* --webhook-cert-dir is a read-only mount of the Certificate's Secret. */
    const cJSON *dep = chart_find(docs, "Deployment", REL);
    const cJSON *c = container(dep);
    const char *cert_dir = arg_value(c, "--webhook-cert-dir");
    ASSERT_NOT_NULL(cert_dir);
    const cJSON *m;
    const char *vol = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"))
    {
        if (strcmp(str_at(m, "mountPath"), cert_dir) == 0) {
            vol = str_at(m, "name");
            ASSERT(cJSON_IsTrue(chart_get(m, "readOnly")));
        }
    }
    ASSERT_NOT_NULL(vol);
    const cJSON *v;
    int found = 0;
    cJSON_ArrayForEach(v, chart_get(dep, "spec.template.spec.volumes"))
    {
        if (strcmp(str_at(v, "name"), vol) == 0) {
            ASSERT_STR_EQ(str_at(v, "secret.secretName"), str_at(crt, "spec.secretName"));
            found = 1;
        }
    }
    ASSERT(found);
    /* ...the Secret the Role names */
    ASSERT_STR_EQ(str_at(crt, "spec.secretName"), REL "-webhook-tls");
    cJSON_Delete(docs);
}

/* Run argv, capturing stdout+stderr; returns the exit status (or -1). */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int fds[2];
    ASSERT_EQ_INT(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
        if (len + 1 >= cap)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_args_are_flags_the_binary_accepts(void)
{
    const char *b = getenv("OPTIPOD_BUILD");
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/optipod", b && *b ? b : "build/rel");
    if (access(bin, X_OK) != 0)
        test_skip("%s not built (make %s)", bin, bin);
    /* Every optional arg switched on, and an extra one through the list. */
    cJSON *docs =
        render("{\"controller\":{\"dryRun\":true,\"extraArgs\":[\"--stats-interval=5m\"]},"
               "\"prometheus\":{\"useServiceAccountToken\":true,\"bearerToken\":{\"enabled\":"
               "true},\"basicAuth\":{\"enabled\":true},\"ca\":{\"enabled\":true},"
               "\"headers\":[\"X-Scope-OrgID: team-a\"]},"
               "\"webhook\":{\"certManager\":{\"enabled\":true}}}",
               NULL);
    const cJSON *c = container(chart_find(docs, "Deployment", REL));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(c, "args");
    ASSERT(has_arg(c, "--dry-run"));
    ASSERT(has_arg(c, "--stats-interval=5m"));
    ASSERT_NOT_NULL(arg_value(c, "--prometheus-token-file"));
    ASSERT_NOT_NULL(arg_value(c, "--prometheus-bearer-token-file"));
    ASSERT_NOT_NULL(arg_value(c, "--prometheus-basic-auth-file"));
    ASSERT_NOT_NULL(arg_value(c, "--prometheus-ca-file"));
    ASSERT(has_arg(c, "--prometheus-header=X-Scope-OrgID: team-a"));
    ASSERT_NOT_NULL(arg_value(c, "--webhook-cert-dir"));
    ASSERT_STR_EQ(arg_value(c, "--min-write-interval"), "30s"); /* the binary's default */
    ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(c, "command"));

    static char help[1 << 16];
    char *hv[] = {bin, "--help", NULL};
    ASSERT_EQ_INT(run_capture(hv, help, sizeof help), 0);
    char missing[1024] = "";
    int nargs = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        ASSERT(cJSON_IsString(a));
        const char *s = a->valuestring;
        if (strncmp(s, "--", 2) != 0)
            test_fail(__FILE__, __LINE__, "arg \"%s\" is not a --flag", s);
        char flag[128], want[140];
        size_t n = strcspn(s, "=");
        ASSERT(n < sizeof flag);
        memcpy(flag, s, n);
        flag[n] = '\0';
        /* as the usage lists it: "--name " (then its type or usage) */
        snprintf(want, sizeof want, "%s ", flag);
        if (!strstr(help, want) && strlen(missing) + n + 2 < sizeof missing)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", flag);
        nargs++;
    }
    if (*missing)
        test_fail(__FILE__, __LINE__, "%s --help does not list:%s", bin, missing);

    /* And the binary parses them all, values included: with --version it exits 0 after
     * parsing, a bad flag or value is exit 2. */
    char *argv[64];
    int k = 0;
    argv[k++] = bin;
    cJSON_ArrayForEach(a, args)
    {
        ASSERT(k < 62);
        argv[k++] = a->valuestring;
    }
    argv[k++] = "--version";
    argv[k] = NULL;
    static char out[1 << 16];
    int rc = run_capture(argv, out, sizeof out);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "optipod with the chart's %d args exited %d: %s", nargs, rc,
                  out);
    ASSERT_STR_EQ(out, "optipod " OPTIPOD_VERSION "\n");
    cJSON_Delete(docs);
}

/* --- Prometheus credentials and checkpoints -------------------------------------------------- */

/* The file a flag names is `key` of Secret `secret`, mounted read-only as a
 * whole directory (no subPath: a rotated Secret reaches the file). */
static void assert_secret_file(const cJSON *dep, const char *flag, const char *secret,
                               const char *key)
{
    const cJSON *c = container(dep);
    const char *file = arg_value(c, flag);
    if (!file)
        test_fail(__FILE__, __LINE__, "no %s", flag);
    const char *slash = strrchr(file, '/');
    ASSERT_NOT_NULL(slash);
    size_t dlen = (size_t)(slash - file);
    const cJSON *m, *v;
    const char *vol = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"))
    {
        const char *mp = str_at(m, "mountPath");
        if (strlen(mp) == dlen && strncmp(mp, file, dlen) == 0) {
            vol = str_at(m, "name");
            ASSERT(cJSON_IsTrue(chart_get(m, "readOnly")));
            ASSERT_NULL(chart_get(m, "subPath"));
        }
    }
    if (!vol)
        test_fail(__FILE__, __LINE__, "%s: nothing mounted at the directory of %s", flag, file);
    int found = 0;
    cJSON_ArrayForEach(v, chart_get(dep, "spec.template.spec.volumes"))
    {
        if (strcmp(str_at(v, "name"), vol) != 0)
            continue;
        found++;
        ASSERT_STR_EQ(str_at(v, "secret.secretName"), secret);
        const cJSON *items = chart_get(v, "secret.items");
        ASSERT_EQ_INT(cJSON_GetArraySize(items), 1);
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(items, 0), "key"), key);
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(items, 0), "path"), slash + 1);
    }
    ASSERT_EQ_INT(found, 1);
}

static void test_prometheus_auth_and_checkpoints(void)
{
    /* Defaults: checkpoints every 10 minutes under the release's name, no credentials. */
    cJSON *docs = render(NULL, NULL);
    const cJSON *c = container(chart_find(docs, "Deployment", REL));
    ASSERT_STR_EQ(arg_value(c, "--checkpoint-interval"), "10m");
    ASSERT_STR_EQ(arg_value(c, "--checkpoint-name"), REL "-usage-checkpoint");
    static const char *const off[] = {"--prometheus-bearer-token-file", "--prometheus-token-file",
                                      "--prometheus-basic-auth-file", "--prometheus-ca-file",
                                      "--prometheus-header"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++)
        if (arg_value(c, off[i]))
            test_fail(__FILE__, __LINE__, "%s by default", off[i]);
    cJSON_Delete(docs);

    /* A Mimir tenant behind a token and a private CA; checkpoints every 2 minutes. */
    docs = render("{\"controller\":{\"checkpointInterval\":\"2m\"},\"prometheus\":{"
                  "\"url\":\"https://mimir.example:8080/prometheus\","
                  "\"bearerToken\":{\"enabled\":true,\"secretName\":\"mimir-token\","
                  "\"key\":\"tok\"},\"ca\":{\"enabled\":true,\"secretName\":\"mimir-ca\","
                  "\"key\":\"root.pem\"},\"headers\":[\"X-Scope-OrgID: team-a\","
                  "\"X-Note: a \\\"b\\\" c\"]}}",
                  NULL);
    const cJSON *dep = chart_find(docs, "Deployment", REL);
    c = container(dep);
    ASSERT_STR_EQ(arg_value(c, "--checkpoint-interval"), "2m");
    ASSERT_STR_EQ(arg_value(c, "--prometheus-url"), "https://mimir.example:8080/prometheus");
    assert_secret_file(dep, "--prometheus-bearer-token-file", "mimir-token", "tok");
    assert_secret_file(dep, "--prometheus-ca-file", "mimir-ca", "root.pem");
    ASSERT_NULL(arg_value(c, "--prometheus-basic-auth-file"));
    /* each header one arg, the value as given (YAML-quoted: the colon stays) */
    ASSERT(has_arg(c, "--prometheus-header=X-Scope-OrgID: team-a"));
    ASSERT(has_arg(c, "--prometheus-header=X-Note: a \"b\" c"));
    cJSON_Delete(docs);

    /* Basic auth from a Secret instead. */
    docs = render("{\"prometheus\":{\"basicAuth\":{\"enabled\":true,\"secretName\":"
                  "\"vm-auth\",\"key\":\"userpass\"}}}",
                  NULL);
    dep = chart_find(docs, "Deployment", REL);
    assert_secret_file(dep, "--prometheus-basic-auth-file", "vm-auth", "userpass");
    ASSERT_NULL(arg_value(container(dep), "--prometheus-bearer-token-file"));
    cJSON_Delete(docs);
}

/* --- toggles --------------------------------------------------------------------------------- */

static void test_webhook_and_metrics_toggles(void)
{
    /* webhook off: no configuration, Service, port, cert volume, flags, or RBAC for them */
    cJSON *docs = render("{\"webhook\":{\"enabled\":false}}", NULL);
    ASSERT_EQ_INT(chart_count(docs, "MutatingWebhookConfiguration"), 0);
    ASSERT_NULL(chart_find(docs, "Service", REL "-webhook"));
    ASSERT_NOT_NULL(chart_find(docs, "Service", REL "-metrics"));
    const cJSON *dep = chart_find(docs, "Deployment", REL);
    const cJSON *c = container(dep);
    ASSERT_NULL(arg_value(c, "--webhook-port"));
    ASSERT_NULL(arg_value(c, "--webhook-cert-dir"));
    ASSERT(has_arg(c, "--leader-elect=true"));
    ASSERT_EQ_INT(cJSON_GetArraySize(chart_get(c, "ports")), 2);
    ASSERT_EQ_INT(cJSON_GetArraySize(chart_get(c, "volumeMounts")), 1);
    ASSERT_EQ_INT(cJSON_GetArraySize(chart_get(dep, "spec.template.spec.volumes")), 1);
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), 8);
    cJSON_Delete(docs);

    /* metrics off: no metrics Service and no ServiceMonitor even when asked for */
    docs = render("{\"metrics\":{\"enabled\":false,\"serviceMonitor\":{\"enabled\":true}}}", NULL);
    ASSERT_NULL(chart_find(docs, "Service", REL "-metrics"));
    ASSERT_NOT_NULL(chart_find(docs, "Service", REL "-webhook"));
    ASSERT_EQ_INT(chart_count(docs, "ServiceMonitor"), 0);
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), 9);
    cJSON_Delete(docs);

    /* both off, PDB off, one replica */
    docs = render("{\"metrics\":{\"enabled\":false},\"webhook\":{\"enabled\":false},"
                  "\"podDisruptionBudget\":{\"enabled\":false},\"replicaCount\":1,"
                  "\"controller\":{\"leaderElect\":false}}",
                  NULL);
    ASSERT_EQ_INT(chart_count(docs, "Service"), 0);
    ASSERT_EQ_INT(chart_count(docs, "PodDisruptionBudget"), 0);
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), 6);
    dep = chart_find(docs, "Deployment", REL);
    ASSERT_EQ_INT(chart_get(dep, "spec.replicas")->valueint, 1);
    /* the binary elects by default: off must be said */
    ASSERT(has_arg(container(dep), "--leader-elect=false"));
    ASSERT_NULL(arg_value(container(dep), "--leader-election-namespace"));
    cJSON_Delete(docs);

    /* ServiceMonitor on: scrapes the metrics Service's port by name */
    docs =
        render("{\"metrics\":{\"serviceMonitor\":{\"enabled\":true,\"interval\":\"15s\"}}}", NULL);
    const cJSON *sm = chart_find(docs, "ServiceMonitor", REL);
    ASSERT_NOT_NULL(sm);
    ASSERT_STR_EQ(str_at(sm, "apiVersion"), "monitoring.coreos.com/v1");
    const cJSON *msvc = chart_find(docs, "Service", REL "-metrics");
    assert_selects(chart_get(sm, "spec.selector.matchLabels"), chart_get(msvc, "metadata.labels"));
    /* and not the webhook Service */
    const cJSON *wsvc = chart_find(docs, "Service", REL "-webhook");
    ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(chart_get(wsvc, "metadata.labels"),
                                                 "app.kubernetes.io/component"));
    const cJSON *ep = cJSON_GetArrayItem(chart_get(sm, "spec.endpoints"), 0);
    ASSERT_STR_EQ(str_at(ep, "port"),
                  str_at(cJSON_GetArrayItem(chart_get(msvc, "spec.ports"), 0), "name"));
    ASSERT_STR_EQ(str_at(ep, "interval"), "15s");
    ASSERT_STR_EQ(str_at(ep, "path"), "/metrics");
    ASSERT(in_str_array(chart_get(sm, "spec.namespaceSelector.matchNames"), NS));
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), 11);
    cJSON_Delete(docs);
}

/* --- CRD and manifest stream ----------------------------------------------------------------- */

static void crd_copy_is_identical(const char *name)
{
    size_t la, lb;
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "crds/%s.yaml", name);
    snprintf(pb, sizeof pb, CHART_DIR "/crds/%s.yaml", name);
    char *a = test_read_file(pa, &la);
    char *b = test_read_file(pb, &lb);
    int same = la == lb && memcmp(a, b, la) == 0;
    cJSON *crd = NULL;
    operr err = {{0}};
    int rc = yaml2json_parse(b, lb, &crd, &err);
    free(a);
    free(b);
    if (!same)
        test_fail(__FILE__, __LINE__, "charts/optipod/crds/ differs from crds/: cp %s %s", pa, pb);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_EQ(str_at(crd, "kind"), "CustomResourceDefinition");
    ASSERT_STR_EQ(str_at(crd, "metadata.name"), name);
    cJSON_Delete(crd);
}

static void test_crd_copy_is_identical(void)
{
    crd_copy_is_identical("optimizationpolicies.optipod.io");
    crd_copy_is_identical("optimizationrecommendations.optipod.io");
}

/* The stream that render_chart prints (and e2e/scenarios/05-chart-render.sh applies) parses
 * back into exactly the same objects, in Helm's install order: the ServiceAccount and RBAC
 * before the Deployment, kinds Helm does not know (the webhook configuration) last. */
static void test_manifest_stream_round_trips(void)
{
    opbuf text;
    opbuf_init(&text, CHART_MAX_FILE);
    cJSON *docs = render(NULL, &text);
    cJSON *back = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(yaml2json_parse_all(opbuf_str(&text), text.len, &back, &err), 0);
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, back)
    {
        if (cJSON_IsNull(d))
            continue;
        ASSERT(cJSON_Compare(d, cJSON_GetArrayItem(docs, i), 1));
        i++;
    }
    ASSERT_EQ_INT(i, cJSON_GetArraySize(docs));
    ASSERT_STR_CONTAINS(opbuf_str(&text), "---\n# Source: optipod/templates/deployment.yaml\n");
    static const char *const order[] = {"PodDisruptionBudget",
                                        "ServiceAccount",
                                        "ClusterRole",
                                        "ClusterRoleBinding",
                                        "Role",
                                        "RoleBinding",
                                        "Service",
                                        "Service",
                                        "Deployment",
                                        "MutatingWebhookConfiguration"};
    ASSERT_EQ_INT(cJSON_GetArraySize(docs), (int)(sizeof order / sizeof order[0]));
    for (i = 0; i < cJSON_GetArraySize(docs); i++)
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(docs, i), "kind"), order[i]);
    /* a disabled template leaves no empty document behind */
    ASSERT(!strstr(opbuf_str(&text), "servicemonitor.yaml"));
    cJSON_Delete(back);
    cJSON_Delete(docs);
    opbuf_release(&text);
}

int main(void)
{
    TEST_RUN(test_subset_renders_like_go_templates);
    TEST_RUN(test_subset_refuses_everything_else);
    TEST_RUN(test_default_render_kinds_and_names);
    TEST_RUN(test_image_tag_is_app_version);
    TEST_RUN(test_rbac_is_exactly_what_the_controller_needs);
    TEST_RUN(test_webhook_configuration_is_safe);
    TEST_RUN(test_deployment_is_hardened_and_wired);
    TEST_RUN(test_cert_manager_mode);
    TEST_RUN(test_prometheus_auth_and_checkpoints);
    TEST_RUN(test_args_are_flags_the_binary_accepts);
    TEST_RUN(test_webhook_and_metrics_toggles);
    TEST_RUN(test_crd_copy_is_identical);
    TEST_RUN(test_manifest_stream_round_trips);
    return test_summary();
}
