/*
 * The CRD in crds/ against the parser in lib/policy: same fields, types,
 * enums, ranges, patterns and defaults; the policies in the docs and the e2e
 * scenarios are valid under the schema and the parser; what the schema
 * rejects the parser rejects too.
 */
#include "test.h"
#include "util/yaml2json.h"
#include "engine/quantity.h"
#include "policy/policy.h"
#include "support/schemacheck.h"
#include "support/seedpolicies.h"

#include <errno.h>
#include <math.h>

static cJSON *crd;

static const char *src_dir(void)
{
    const char *d = getenv("OPTIPOD_SRC");
    return d && *d ? d : ".";
}

static cJSON *load_crd(void)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/crds/optimizationpolicies.optipod.io.yaml", src_dir());
    char *text = test_read_file(path, &len);
    operr err = {{0}};
    cJSON *j = NULL;
    yaml2json_parse(text, len, &j, &err);
    free(text);
    if (!j)
        test_fail(__FILE__, __LINE__, "%s: %s", path, err.msg);
    return j;
}

/* Follow a dotted path of object keys; numbers index arrays ("spec.versions.0"). */
static const cJSON *at(const cJSON *j, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j;
         k = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(j))
            j = cJSON_GetArrayItem(j, atoi(k));
        else
            j = cJSON_GetObjectItemCaseSensitive(j, k);
    }
    return j;
}

static const char *str_at(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *version(void)
{
    return at(crd, "spec.versions.0");
}

static const cJSON *root_schema(void)
{
    return at(version(), "schema.openAPIV3Schema");
}

static void test_structure(void)
{
    ASSERT_STR_EQ(str_at(crd, "apiVersion"), "apiextensions.k8s.io/v1");
    ASSERT_STR_EQ(str_at(crd, "kind"), "CustomResourceDefinition");
    ASSERT_STR_EQ(str_at(crd, "metadata.name"), "optimizationpolicies.optipod.io");
    ASSERT_STR_EQ(str_at(crd, "spec.group"), "optipod.io");
    ASSERT_STR_EQ(str_at(crd, "spec.names.kind"), "OptimizationPolicy");
    ASSERT_STR_EQ(str_at(crd, "spec.names.listKind"), "OptimizationPolicyList");
    ASSERT_STR_EQ(str_at(crd, "spec.names.plural"), "optimizationpolicies");
    ASSERT_STR_EQ(str_at(crd, "spec.names.singular"), "optimizationpolicy");
    ASSERT_STR_EQ(str_at(crd, "spec.names.shortNames.0"), "optpol");
    ASSERT_STR_EQ(str_at(crd, "spec.scope"), "Namespaced");
    ASSERT_EQ_INT(cJSON_GetArraySize(at(crd, "spec.versions")), 1);
    const cJSON *v = version();
    ASSERT_STR_EQ(str_at(v, "name"), "v1alpha1");
    ASSERT(cJSON_IsTrue(at(v, "served")));
    ASSERT(cJSON_IsTrue(at(v, "storage")));
    ASSERT(cJSON_IsObject(at(v, "subresources.status")));
    ASSERT_STR_EQ(str_at(root_schema(), "type"), "object");
    ASSERT_STR_EQ(str_at(root_schema(), "required.0"), "spec");
    ASSERT_STR_EQ(str_at(root_schema(), "properties.spec.required.0"), "selector");
    ASSERT_STR_EQ(str_at(root_schema(), "properties.spec.properties.selector.required.0"),
                  "workloadSelector");

    static const char *const cols[][3] = {
        {"Mode", "string", ".spec.mode"},
        {"Strategy", "string", ".spec.updateStrategy.strategy"},
        {"Workloads", "integer", ".status.workloadsMatched"},
        {"Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status"},
        {"Age", "date", ".metadata.creationTimestamp"},
    };
    const cJSON *pc = at(v, "additionalPrinterColumns");
    ASSERT_EQ_INT(cJSON_GetArraySize(pc), 5);
    for (int i = 0; i < 5; i++) {
        const cJSON *c = cJSON_GetArrayItem(pc, i);
        ASSERT_STR_EQ(str_at(c, "name"), cols[i][0]);
        ASSERT_STR_EQ(str_at(c, "type"), cols[i][1]);
        ASSERT_STR_EQ(str_at(c, "jsonPath"), cols[i][2]);
    }
    /* The printer columns point at fields the schema declares. */
    ASSERT_NOT_NULL(at(root_schema(), "properties.status.properties.workloadsMatched"));
    ASSERT_NOT_NULL(at(root_schema(), "properties.status.properties.conditions.items.properties."
                                      "status"));
}

/* --- walking the schema ------------------------------------------------------------------ */

typedef struct walk {
    char paths[256][160];
    const cJSON *nodes[256];
    size_t n;
} walk;

/* Collect every path under `path` the way the parser's table spells them:
 * properties add ".name", array items add "[]"; a map's values are not fields. */
static void walk_schema(walk *w, const cJSON *s, const char *path)
{
    if (w->n >= 256)
        test_fail(__FILE__, __LINE__, "schema too large to walk");
    snprintf(w->paths[w->n], sizeof w->paths[0], "%s", path);
    w->nodes[w->n++] = s;
    const cJSON *props = at(s, "properties");
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%s", path, p->string);
        if (!cJSON_IsString(at(p, "description")) || !*at(p, "description")->valuestring)
            test_fail(__FILE__, __LINE__, "%s has no description", sub);
        walk_schema(w, p, sub);
    }
    const cJSON *items = at(s, "items");
    if (items) {
        char sub[160];
        snprintf(sub, sizeof sub, "%s[]", path);
        walk_schema(w, items, sub);
    }
}

static const char *schema_type(const pol_field *f)
{
    switch (f->type) {
    case POL_F_OBJECT:
    case POL_F_MAP:
        return "object";
    case POL_F_ARRAY:
        return "array";
    case POL_F_STRING:
    case POL_F_DURATION:
        return "string";
    case POL_F_INTEGER:
        return "integer";
    case POL_F_NUMBER:
        return "number";
    case POL_F_BOOLEAN:
        return "boolean";
    case POL_F_QUANTITY:
        return NULL; /* int-or-string */
    }
    return "?";
}

static void test_schema_and_parser_know_the_same_fields(void)
{
    static walk w;
    w.n = 0;
    walk_schema(&w, at(root_schema(), "properties.spec"), "spec");
    size_t nf;
    const pol_field *fields = pol_fields(&nf);
    /* Schema → parser. */
    for (size_t i = 0; i < w.n; i++)
        if (!pol_field_find(w.paths[i]))
            test_fail(__FILE__, __LINE__, "schema field %s is unknown to the parser", w.paths[i]);
    /* Parser → schema, with type, enum, range, pattern and default. */
    for (size_t i = 0; i < nf; i++) {
        const pol_field *f = &fields[i];
        const cJSON *s = NULL;
        for (size_t k = 0; k < w.n && !s; k++)
            if (strcmp(w.paths[k], f->path) == 0)
                s = w.nodes[k];
        if (!s)
            test_fail(__FILE__, __LINE__, "parser field %s is not in the schema", f->path);
        const char *want = schema_type(f);
        if (want) {
            if (!str_at(s, "type") || strcmp(str_at(s, "type"), want) != 0)
                test_fail(__FILE__, __LINE__, "%s: schema type %s, parser %s", f->path,
                          str_at(s, "type"), want);
        } else {
            ASSERT(cJSON_IsTrue(at(s, "x-kubernetes-int-or-string")));
            ASSERT_STR_EQ(str_at(s, "pattern"), POL_QUANTITY_PATTERN);
        }
        if (f->type == POL_F_DURATION)
            ASSERT_STR_EQ(str_at(s, "pattern"), POL_DURATION_PATTERN);
        if (f->type == POL_F_MAP)
            ASSERT_STR_EQ(str_at(s, "additionalProperties.type"), "string");

        const cJSON *en = at(s, "enum");
        if (f->enums) {
            int n = 0;
            while (f->enums[n])
                n++;
            if (cJSON_GetArraySize(en) != n)
                test_fail(__FILE__, __LINE__, "%s: schema has %d enum values, parser %d", f->path,
                          cJSON_GetArraySize(en), n);
            for (int k = 0; k < n; k++)
                ASSERT_STR_EQ(cJSON_GetArrayItem(en, k)->valuestring, f->enums[k]);
        } else if (en) {
            test_fail(__FILE__, __LINE__, "%s: enum in the schema only", f->path);
        }

        const cJSON *lo = at(s, "minimum"), *hi = at(s, "maximum");
        ASSERT_EQ_INT(lo != NULL, f->has_min);
        ASSERT_EQ_INT(hi != NULL, f->has_max);
        if (lo)
            ASSERT_NEAR(lo->valuedouble, f->min, 0);
        if (hi)
            ASSERT_NEAR(hi->valuedouble, f->max, 0);

        const cJSON *d = at(s, "default");
        if (!f->dflt != !d)
            test_fail(__FILE__, __LINE__, "%s: default in %s only", f->path,
                      d ? "the schema" : "the parser");
        if (d) {
            cJSON *pd = cJSON_Parse(f->dflt);
            bool same = cJSON_Compare(pd, d, true);
            char *t = cJSON_PrintUnformatted(d);
            cJSON_Delete(pd);
            if (!same) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s: schema default %s, parser %s", f->path, t, f->dflt);
                free(t);
                test_fail(__FILE__, __LINE__, "%s", msg);
            }
            free(t);
        }
    }
    ASSERT_EQ_INT(w.n, nf);
}

/* The values the parser fills in are the schema's defaults (end to end:
 * parse a minimal policy, print its effective spec, compare). */
static void test_parser_defaults_are_schema_defaults(void)
{
    static walk w;
    w.n = 0;
    walk_schema(&w, at(root_schema(), "properties.spec"), "spec");
    cJSON *doc = cJSON_Parse("{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{"
                             "\"workloadSelector\":{}}}}");
    pol_policy p;
    operr err = {{0}};
    pol_init(&p);
    ASSERT_EQ_INT(pol_parse(doc, &p, &err), 0);
    cJSON *eff = cJSON_CreateObject();
    cJSON_AddItemToObject(eff, "spec", pol_spec_to_json(&p));
    int checked = 0;
    for (size_t i = 0; i < w.n; i++) {
        const cJSON *d = at(w.nodes[i], "default");
        if (!d || cJSON_IsObject(d))
            continue;
        const cJSON *got = at(eff, w.paths[i]);
        if (!cJSON_Compare(got, d, true)) {
            char *a = cJSON_PrintUnformatted(got), *b = cJSON_PrintUnformatted(d);
            char msg[256];
            snprintf(msg, sizeof msg, "%s: parser gives %s, schema default %s", w.paths[i],
                     a ? a : "nothing", b);
            free(a);
            free(b);
            test_fail(__FILE__, __LINE__, "%s", msg);
        }
        checked++;
    }
    ASSERT_CMP_INT(checked, >=, 20);
    /* And the effective spec is itself valid under the schema. */
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    int n = tsch_validate(at(root_schema(), "properties.spec"), at(eff, "spec"), "spec", &errs);
    if (n)
        test_fail(__FILE__, __LINE__, "%s", opbuf_str(&errs));
    opbuf_release(&errs);
    cJSON_Delete(eff);
    cJSON_Delete(doc);
    pol_release(&p);
}

static void test_seed_policies_are_valid_under_the_schema(void)
{
    for (size_t i = 0; i < seed_policies_n; i++) {
        operr err = {{0}};
        cJSON *j = NULL;
        yaml2json_parse(seed_policies[i].yaml, strlen(seed_policies[i].yaml), &j, &err);
        ASSERT_NOT_NULL(j);
        opbuf errs;
        opbuf_init(&errs, 1 << 16);
        int n = tsch_validate(root_schema(), j, "", &errs);
        if (n)
            test_fail(__FILE__, __LINE__, "%s:\n%s", seed_policies[i].what, opbuf_str(&errs));
        opbuf_release(&errs);
        cJSON_Delete(j);
    }
}

/* Every OptimizationPolicy a user or reviewer copies from this repository: the
 * docs' YAML blocks and the e2e scenarios' heredocs (which kubectl sends to a
 * real API server, whose strict field validation refuses an unknown field).
 * Each must be valid under the schema and parse without a validation error. */
static void check_policy(const char *rel, int nth, const char *yaml, size_t len)
{
    operr err = {{0}};
    cJSON *j = NULL;
    yaml2json_parse(yaml, len, &j, &err);
    if (!j)
        test_fail(__FILE__, __LINE__, "%s: policy %d: %s", rel, nth, err.msg);
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    if (tsch_validate(root_schema(), j, "", &errs) != 0)
        test_fail(__FILE__, __LINE__, "%s: policy %d:\n%s", rel, nth, opbuf_str(&errs));
    pol_policy p;
    pol_init(&p);
    if (pol_parse(j, &p, &err) != 0)
        test_fail(__FILE__, __LINE__, "%s: policy %d: %s", rel, nth, err.msg);
    pol_release(&p);
    opbuf_release(&errs);
    cJSON_Delete(j);
}

/* The policies in the YAML blocks or heredocs of one file; returns how many. */
static int check_policies_in(const char *rel)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", src_dir(), rel);
    char *text = test_read_file(path, &len);
    int found = 0;
    for (char *k = strstr(text, "\nkind: OptimizationPolicy\n"); k;
         k = strstr(k + 1, "\nkind: OptimizationPolicy\n")) {
        /* the block around it: from the line after "<<EOF" or "```yaml" to "EOF" or "```" */
        char *start = k;
        while (start > text && strncmp(start, "<<EOF\n", 6) != 0 &&
               strncmp(start, "```yaml\n", 8) != 0)
            start--;
        ASSERT(start > text);
        start = strchr(start, '\n') + 1;
        char *end = strstr(k, "\nEOF\n");
        char *fence = strstr(k, "\n```");
        if (!end || (fence && fence < end))
            end = fence;
        ASSERT_NOT_NULL(end);
        /* the scenarios' one shell variable, as the shell would expand it */
        opbuf doc;
        opbuf_init(&doc, 1 << 16);
        for (const char *q = start; q <= end; q++) {
            if (strncmp(q, "$E2E_NS", 7) == 0) {
                ASSERT_EQ_INT(opbuf_puts(&doc, "optipod-e2e-1"), 0);
                q += 6;
            } else {
                ASSERT_EQ_INT(opbuf_append(&doc, q, 1), 0);
            }
        }
        ASSERT(!strchr(opbuf_str(&doc), '$')); /* no other expansion left unchecked */
        check_policy(rel, ++found, doc.data, doc.len);
        opbuf_release(&doc);
    }
    free(text);
    return found;
}

static void test_policies_in_docs_and_e2e_are_valid(void)
{
    ASSERT_EQ_INT(check_policies_in("docs/policy.md"), 1);
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/docs/sample/policy.yaml", src_dir());
    char *sample = test_read_file(path, &len);
    check_policy("docs/sample/policy.yaml", 1, sample, len);
    free(sample);
    ASSERT_EQ_INT(check_policies_in("e2e/scenarios/20-ssa-gitops.sh"), 1);
    ASSERT_EQ_INT(check_policies_in("e2e/scenarios/25-duplicate-controller.sh"), 1);
    ASSERT_EQ_INT(check_policies_in("e2e/scenarios/40-rollout.sh"), 1);
}

/* Validate a spec under the schema (0 = valid) and parse it (0 = valid). */
static void check_both(const char *spec, int *schema_errors, int *parse_rc, operr *err)
{
    char doc[2048];
    snprintf(doc, sizeof doc, "{\"metadata\":{\"name\":\"x\"},\"spec\":%s}", spec);
    cJSON *j = cJSON_Parse(doc);
    if (!j)
        test_fail(__FILE__, __LINE__, "bad test JSON %s", spec);
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    *schema_errors = tsch_validate(root_schema(), j, "", &errs);
    opbuf_release(&errs);
    pol_policy p;
    pol_init(&p);
    *parse_rc = pol_parse(j, &p, err);
    pol_release(&p);
    cJSON_Delete(j);
}

#define SEL "\"selector\":{\"workloadSelector\":{}}"

static void test_schema_rejects_what_the_parser_rejects(void)
{
    static const char *const bad[] = {
        "{" SEL ",\"mode\":\"auto\"}",
        "{" SEL ",\"weight\":1001}",
        "{" SEL ",\"weight\":2.5}",
        "{" SEL ",\"metricsConfig\":{\"percentile\":\"P75\"}}",
        "{" SEL ",\"metricsConfig\":{\"provider\":\"datadog\"}}",
        "{" SEL ",\"metricsConfig\":{\"safetyFactor\":0.5}}",
        "{" SEL ",\"metricsConfig\":{\"rollingWindow\":\"1 day\"}}",
        "{" SEL ",\"metricsConfig\":{\"rollingWindow\":\"24\"}}",
        "{" SEL ",\"resourceBounds\":{\"cpu\":{\"min\":\"abc\"}}}",
        "{" SEL ",\"resourceBounds\":{\"memory\":{\"max\":\"1Qi\"}}}",
        "{" SEL ",\"resourceBounds\":{\"memory\":{\"max\":true}}}",
        "{" SEL ",\"updateStrategy\":{\"strategy\":\"patch\"}}",
        "{" SEL ",\"updateStrategy\":{\"rolloutStrategy\":\"later\"}}",
        "{" SEL ",\"updateStrategy\":{\"allowRecreate\":\"yes\"}}",
        "{" SEL ",\"limitsPolicy\":{}}",
        "{" SEL ",\"limitsPolicy\":{\"mode\":\"Ratio\"}}",
        "{" SEL ",\"limitsPolicy\":{\"mode\":\"Multiplier\",\"multiplier\":0.5}}",
        "{" SEL ",\"minHistory\":{\"samples\":0}}",
        "{" SEL ",\"changeThresholdPercent\":-1}",
        "{" SEL ",\"maxDecreasePercent\":101}",
        "{" SEL ",\"oomBump\":{\"factor\":11}}",
        "{" SEL ",\"oomBump\":{\"cooldown\":\"1w\"}}",
        "{" SEL ",\"excludeContainers\":[\"Bad_Name\"]}",
        "{" SEL ",\"reconcileInterval\":\"5 minutes\"}",
        "{" SEL ",\"unknownField\":1}",
        "{\"selector\":{}}",
        "{}",
        "{\"selector\":{\"workloadSelector\":{},\"workloadKinds\":[\"CronJob\"]}}",
        "{\"selector\":{\"workloadSelector\":{},\"workloadKinds\":[]}}",
        ("{\"selector\":{\"workloadSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
         "\"Equals\"}]}}}"),
        "{\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"a\":1}}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int nschema, rc;
        operr err = {{0}};
        check_both(bad[i], &nschema, &rc, &err);
        if (nschema == 0 || rc != -EINVAL)
            test_fail(__FILE__, __LINE__, "%s: schema errors %d, parse rc %d", bad[i], nschema, rc);
    }
}

/* CEL rules in the schema (containing `needle`, when given). */
static int count_rules(const cJSON *s, const char *needle)
{
    int n = 0;
    const cJSON *c;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "x-kubernetes-validations"))
    {
        const char *rule = str_at(r, "rule");
        ASSERT_NOT_NULL(rule);
        ASSERT_NOT_NULL(str_at(r, "message"));
        n += !needle || strstr(rule, needle);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s, "properties")) n +=
        count_rules(c, needle);
    c = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (c)
        n += count_rules(c, needle);
    return n;
}

/* What the schema cannot say (on Kubernetes 1.24) and only the controller
 * catches: documented in the CRD and docs/policy.md. */
static void test_semantic_rules_left_to_the_controller(void)
{
    static const char *const only_parser[] = {
        "{" SEL ",\"resourceBounds\":{\"cpu\":{\"min\":\"2\",\"max\":\"500m\"}}}",
        "{" SEL ",\"resourceBounds\":{\"memory\":{\"min\":\"-1Gi\"}}}",
        "{" SEL ",\"metricsConfig\":{\"rollingWindow\":\"1m\"}}",
        "{" SEL ",\"minHistory\":{\"duration\":\"48h\"}}",
        "{" SEL ",\"reconcileInterval\":\"1s\"}",
        /* CEL rules (Kubernetes 1.25+), which this validator does not run: */
        "{" SEL ",\"updateStrategy\":{\"strategy\":\"ssa\",\"useServerSideApply\":false}}",
        "{" SEL ",\"limitsPolicy\":{\"mode\":\"KeepRatio\",\"multiplier\":2}}",
        ("{\"selector\":{\"workloadSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
         "\"In\"}]}}}"),
    };
    for (size_t i = 0; i < sizeof only_parser / sizeof *only_parser; i++) {
        int nschema, rc;
        operr err = {{0}};
        check_both(only_parser[i], &nschema, &rc, &err);
        if (nschema != 0 || rc != -EINVAL)
            test_fail(__FILE__, __LINE__, "%s: schema errors %d, parse rc %d", only_parser[i],
                      nschema, rc);
    }
    /* No CEL rule uses quantity(): it needs Kubernetes 1.29 and optipod supports 1.24. */
    ASSERT_EQ_INT(count_rules(root_schema(), "quantity("), 0);
    ASSERT_EQ_INT(count_rules(root_schema(), NULL), 4);
}

/* The CRD's quantity pattern and the quantity parser agree. Exception: the
 * Kubernetes pattern allows a fractional exponent ("1e1.5") that neither the
 * API server's parser nor ours accepts. */
static void test_quantity_pattern_agrees_with_the_parser(void)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"100m", true},   {"4000m", true}, {"0.5", true},  {"1", true},    {".5", true},
        {"1.", true},     {"256Mi", true}, {"8Gi", true},  {"1e3", true},  {"1E3", true},
        {"1e-3", true},   {"+1", true},    {"-1", true},   {"512M", true}, {"1k", true},
        {"2Ei", true},    {"5n", true},    {"3u", true},   {"abc", false}, {"", false},
        {"1Qi", false},   {"1 Gi", false}, {"1gi", false}, {"Mi", false},  {".", false},
        {"1K", false},    {"1mi", false},  {"--1", false}, {"1e", false},  {"0x10", false},
        {"1.5.5", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kq q;
        int re = tsch_regex_match(POL_QUANTITY_PATTERN, cases[i].s);
        int kp = kq_parse_str(&q, cases[i].s, NULL) == 0;
        if (re != cases[i].ok || kp != cases[i].ok)
            test_fail(__FILE__, __LINE__, "\"%s\": pattern %d, parser %d, want %d", cases[i].s, re,
                      kp, cases[i].ok);
    }
    kq q;
    ASSERT_EQ_INT(tsch_regex_match(POL_QUANTITY_PATTERN, "1e1.5"), 1);
    ASSERT_NE_INT(kq_parse_str(&q, "1e1.5", NULL), 0);
}

static void test_status_schema(void)
{
    const char *status =
        "{\"observedGeneration\":3,\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
        "\"observedGeneration\":3,\"lastTransitionTime\":\"2024-05-01T10:00:00Z\",\"reason\":"
        "\"InvalidSpec\",\"message\":\"spec.resourceBounds.cpu.min: \\\"abc\\\" is not a "
        "quantity\"},{\"type\":\"Conflict\",\"status\":\"True\",\"lastTransitionTime\":"
        "\"2024-05-01T10:00:00Z\",\"reason\":\"LowerPrecedence\",\"message\":\"1 workload\"},"
        "{\"type\":\"MetricsAvailable\",\"status\":\"Unknown\",\"lastTransitionTime\":"
        "\"2024-05-01T10:00:00Z\",\"reason\":\"NotQueried\",\"message\":\"\"}],"
        "\"workloadsMatched\":2,\"workloadsApplied\":1,\"workloadsConflicting\":1,"
        "\"lastReconcileTime\":\"2024-05-01T10:00:00Z\",\"validationErrors\":[\"spec.mode: x\"],"
        "\"rollout\":{\"kind\":\"Deployment\",\"namespace\":\"prod\",\"name\":\"web\","
        "\"generation\":7,\"startedAt\":\"2024-05-01T09:58:00Z\"},"
        "\"conflicts\":[{\"kind\":\"Deployment\",\"namespace\":\"prod\",\"name\":\"web\","
        "\"winner\":\"prod/heavy\"}],\"recommendations\":[{\"kind\":\"Deployment\",\"namespace\":"
        "\"prod\",\"name\":\"web\",\"container\":\"nginx\",\"cpuRequest\":\"250m\","
        "\"memoryRequest\":\"512Mi\",\"samples\":1440,\"applied\":false,\"explanation\":\"P90 x "
        "1.2\",\"time\":\"2024-05-01T10:00:00Z\"}]}";
    cJSON *j = cJSON_Parse(status);
    ASSERT_NOT_NULL(j);
    const cJSON *s = at(root_schema(), "properties.status");
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    int n = tsch_validate(s, j, "status", &errs);
    if (n)
        test_fail(__FILE__, __LINE__, "%s", opbuf_str(&errs));
    /* Bounded lists and enums are enforced. */
    ASSERT_EQ_INT(at(s, "properties.recommendations.maxItems")->valueint, 100);
    ASSERT_EQ_INT(at(s, "properties.validationErrors.maxItems")->valueint, POL_MAX_ERRORS);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "conditions"), 0), "type",
                              cJSON_CreateString("Healthy"));
    ASSERT_EQ_INT(tsch_validate(s, j, "status", &errs), 1);
    /* a rollout record names its workload and generation */
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "conditions"), 0), "type",
                              cJSON_CreateString("Ready"));
    ASSERT_EQ_INT(tsch_validate(s, j, "status", &errs), 0);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "rollout"), "generation");
    ASSERT_EQ_INT(tsch_validate(s, j, "status", &errs), 1);
    cJSON_Delete(j);
    opbuf_release(&errs);
}

/* Issue 13 point 4: docs/policy.md said the controller rejects unknown fields,
 * but the API server prunes a field the schema does not declare before the
 * controller sees it. The schema indeed does not declare a typo (so it is
 * pruned), the parser only refuses it where it reads the document itself, and
 * the docs say so. */
static void test_typos_are_pruned_and_the_docs_say_so(void)
{
    cJSON *j = cJSON_Parse("{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":"
                           "\"OptimizationPolicy\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
                           "\"selector\":{\"workloadSelector\":{}},\"metricsConfig\":{"
                           "\"safetyfactor\":2}}}");
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    ASSERT_EQ_INT(tsch_validate(root_schema(), j, "", &errs), 1);
    ASSERT_STR_CONTAINS(opbuf_str(&errs), "safetyfactor");
    opbuf_release(&errs);
    pol_policy p;
    pol_init(&p);
    operr err = {{0}};
    ASSERT_EQ_INT(pol_parse(j, &p, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "spec.metricsConfig.safetyfactor: unknown field");
    pol_release(&p);
    cJSON_Delete(j);
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/docs/policy.md", src_dir());
    char *doc = test_read_file(path, &len);
    ASSERT_STR_CONTAINS(doc, "The API server *prunes* every field the CRD");
    ASSERT_STR_CONTAINS(doc, "`optipod plan --policy FILE`");
    ASSERT(!strstr(doc, "is an error, not silently ignored"));
    free(doc);
}

int main(void)
{
    crd = load_crd();
    TEST_RUN(test_structure);
    TEST_RUN(test_schema_and_parser_know_the_same_fields);
    TEST_RUN(test_parser_defaults_are_schema_defaults);
    TEST_RUN(test_seed_policies_are_valid_under_the_schema);
    TEST_RUN(test_policies_in_docs_and_e2e_are_valid);
    TEST_RUN(test_schema_rejects_what_the_parser_rejects);
    TEST_RUN(test_semantic_rules_left_to_the_controller);
    TEST_RUN(test_quantity_pattern_agrees_with_the_parser);
    TEST_RUN(test_status_schema);
    TEST_RUN(test_typos_are_pruned_and_the_docs_say_so);
    cJSON_Delete(crd);
    return test_summary();
}
