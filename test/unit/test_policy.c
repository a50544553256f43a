#include "test.h"
#include "util/yaml2json.h"
#include "policy/policy.h"
#include "support/schemacheck.h"
#include "support/seedpolicies.h"

#include <errno.h>

/* Wrap a spec (JSON text) into a policy object and parse it. */
static int parse_spec(const char *spec, pol_policy *p, operr *err)
{
    char *doc = malloc(strlen(spec) + 128);
    sprintf(doc, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"team\"},\"spec\":%s}", spec);
    cJSON *j = cJSON_Parse(doc);
    free(doc);
    if (!j)
        test_fail(__FILE__, __LINE__, "bad test JSON: %s", spec);
    int rc = pol_parse(j, p, err);
    cJSON_Delete(j);
    return rc;
}

#define MIN_SPEC "{\"selector\":{\"workloadSelector\":{}}"

static void test_seed_policies_parse(void)
{
    for (size_t i = 0; i < seed_policies_n; i++) {
        operr err = {{0}};
        cJSON *j = NULL;
        yaml2json_parse(seed_policies[i].yaml, strlen(seed_policies[i].yaml), &j, &err);
        if (!j)
            test_fail(__FILE__, __LINE__, "%s: %s", seed_policies[i].what, err.msg);
        pol_policy p;
        pol_init(&p);
        int rc = pol_parse(j, &p, &err);
        cJSON_Delete(j);
        if (rc)
            test_fail(__FILE__, __LINE__, "%s: %s", seed_policies[i].what, err.msg);
        ASSERT(p.valid);
        ASSERT_EQ_INT(p.mode, POL_MODE_AUTO);
        ASSERT_EQ_INT(p.provider, POL_PROVIDER_PROMETHEUS);
        ASSERT_EQ_INT(p.window_ms, 24LL * 3600 * 1000);
        ASSERT_EQ_INT(p.percentile, 90);
        ASSERT_NEAR(p.safety_factor, 1.2, 1e-12); /* given or defaulted: 1.2 either way */
        ASSERT_EQ_INT(p.cpu.min.value, 100);
        ASSERT(p.update_requests_only);
        ASSERT_EQ_INT(p.limits, POL_LIMITS_REQUESTS_ONLY);
        ASSERT_STR_EQ(p.namespace, "default");
        ASSERT_EQ_INT(p.workload_sel.nreqs, 1);
        pol_release(&p);
    }
}

static void test_seed_policy_values(void)
{
    operr err = {{0}};
    cJSON *j = NULL;
    yaml2json_parse(seed_policies[0].yaml, strlen(seed_policies[0].yaml), &j, &err);
    ASSERT_NOT_NULL(j);
    pol_policy p;
    pol_init(&p);
    ASSERT_EQ_INT(pol_parse(j, &p, &err), 0);
    cJSON_Delete(j);
    ASSERT_STR_EQ(p.name, "production-workloads");
    ASSERT_EQ_INT(p.cpu.min.value, 100);
    ASSERT_EQ_INT(p.cpu.max.value, 4000);
    ASSERT_STR_EQ(p.cpu.max.text, "4000m");
    ASSERT_EQ_INT(p.memory.min.value, 256LL << 20);
    ASSERT_EQ_INT(p.memory.max.value, 8LL << 30);
    ASSERT_EQ_INT(p.strategy, POL_STRATEGY_WEBHOOK);
    ASSERT_EQ_INT(p.rollout, POL_ROLLOUT_ON_NEXT_RESTART);
    ASSERT(p.allow_in_place_resize);
    ASSERT(!p.allow_recreate);
    cJSON *l = cJSON_Parse("{\"optimize\":\"true\"}");
    ASSERT(lsel_matches(&p.workload_sel, l));
    cJSON_Delete(l);
    pol_release(&p);
}

static void test_defaults(void)
{
    pol_policy p;
    operr err = {{0}};
    pol_init(&p);
    ASSERT_EQ_INT(parse_spec(MIN_SPEC "}", &p, &err), 0);
    ASSERT(p.valid);
    ASSERT_EQ_INT(p.nerrors, 0);
    ASSERT_STR_EQ(p.name, "p");
    ASSERT_STR_EQ(p.namespace, "team");
    ASSERT_EQ_INT(p.created, INT64_MAX);
    ASSERT_EQ_INT(p.mode, POL_MODE_RECOMMEND);
    ASSERT_EQ_INT(p.weight, 0);
    ASSERT_EQ_INT(p.kinds, POL_KIND_ALL);
    ASSERT(!p.has_namespace_sel);
    ASSERT_EQ_INT(p.provider, POL_PROVIDER_DEFAULT);
    ASSERT_EQ_INT(p.window_ms, 24LL * 3600 * 1000);
    ASSERT_EQ_INT(p.percentile, 90);
    ASSERT_NEAR(p.safety_factor, 1.2, 1e-12);
    ASSERT(!p.cpu.min.set && !p.cpu.max.set && !p.memory.min.set && !p.memory.max.set);
    ASSERT_EQ_INT(p.strategy, POL_STRATEGY_SSA);
    ASSERT_EQ_INT(p.rollout, POL_ROLLOUT_ON_NEXT_RESTART);
    ASSERT(!p.allow_in_place_resize);
    ASSERT(!p.allow_recreate);
    ASSERT(p.update_requests_only);
    ASSERT(p.use_ssa);
    ASSERT(p.force_conflicts);
    ASSERT_EQ_INT(p.min_samples, 60);
    ASSERT_EQ_INT(p.min_history_ms, 6LL * 3600 * 1000);
    ASSERT_EQ_INT(p.change_threshold_pct, 10);
    ASSERT_EQ_INT(p.max_decrease_pct, 50);
    ASSERT_EQ_INT(p.limits, POL_LIMITS_REQUESTS_ONLY);
    ASSERT(p.memory_floor_at_peak);
    ASSERT(p.oom_bump);
    ASSERT_EQ_INT(p.oom_min_bump_bytes, 100LL << 20);
    ASSERT_NEAR(p.oom_factor, 1.2, 1e-12);
    ASSERT_EQ_INT(p.oom_cooldown_ms, 24LL * 3600 * 1000);
    ASSERT_EQ_INT(p.nexclude, 0);
    ASSERT(!p.include_init_containers);
    ASSERT_EQ_INT(p.reconcile_ms, 5LL * 60 * 1000);

    /* minHistory.duration follows a short window. */
    ASSERT_EQ_INT(parse_spec(MIN_SPEC ",\"metricsConfig\":{\"rollingWindow\":\"2h\"}}", &p, &err),
                  0);
    ASSERT_EQ_INT(p.min_history_ms, 2LL * 3600 * 1000);
    pol_release(&p);
}

static void test_full_spec_round_trips(void)
{
    const char *spec =
        "{\"mode\":\"Auto\",\"weight\":7,\"selector\":{\"workloadSelector\":{\"matchLabels\":{"
        "\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\","
        "\"values\":[\"db\"]}]},\"namespaceSelector\":{\"matchLabels\":{\"env\":\"prod\"}},"
        "\"workloadKinds\":[\"StatefulSet\",\"Deployment\"]},\"metricsConfig\":{\"provider\":"
        "\"metrics-server\",\"rollingWindow\":\"7d\",\"percentile\":\"P95\",\"safetyFactor\":1.5},"
        "\"resourceBounds\":{\"cpu\":{\"min\":\"50m\",\"max\":2},\"memory\":{\"max\":\"1e9\"}},"
        "\"updateStrategy\":{\"strategy\":\"webhook\",\"rolloutStrategy\":\"immediate\","
        "\"allowInPlaceResize\":true,\"allowRecreate\":true,\"useServerSideApply\":false,"
        "\"forceConflicts\":false},\"minHistory\":{\"samples\":500,\"duration\":\"2d\"},"
        "\"changeThresholdPercent\":5,\"maxDecreasePercent\":25,\"limitsPolicy\":{\"mode\":"
        "\"Multiplier\",\"multiplier\":2.5},\"memoryFloorAtPeak\":false,\"oomBump\":{\"enabled\":"
        "false,\"minIncrease\":\"64Mi\",\"factor\":1.5,\"cooldown\":\"90m\"},\"excludeContainers\":"
        "[\"istio-proxy\",\"linkerd-proxy\"],\"includeInitContainers\":true,\"reconcileInterval\":"
        "\"30s\"}";
    pol_policy p, q;
    operr err = {{0}};
    pol_init(&p);
    pol_init(&q);
    int rc = parse_spec(spec, &p, &err);
    if (rc)
        test_fail(__FILE__, __LINE__, "%s", err.msg);
    ASSERT_EQ_INT(p.mode, POL_MODE_AUTO);
    ASSERT_EQ_INT(p.weight, 7);
    ASSERT_EQ_INT(p.kinds, POL_KIND_STATEFULSET | POL_KIND_DEPLOYMENT);
    ASSERT(p.has_namespace_sel);
    ASSERT_EQ_INT(p.provider, POL_PROVIDER_METRICS_SERVER);
    ASSERT_EQ_INT(p.window_ms, 7LL * 24 * 3600 * 1000);
    ASSERT_EQ_INT(p.percentile, 95);
    ASSERT_NEAR(p.safety_factor, 1.5, 0);
    ASSERT_EQ_INT(p.cpu.min.value, 50);
    ASSERT_EQ_INT(p.cpu.max.value, 2000);
    ASSERT_STR_EQ(p.cpu.max.text, "2");
    ASSERT(!p.memory.min.set);
    ASSERT_EQ_INT(p.memory.max.value, 1000000000);
    ASSERT_EQ_INT(p.strategy, POL_STRATEGY_WEBHOOK);
    ASSERT_EQ_INT(p.rollout, POL_ROLLOUT_IMMEDIATE);
    ASSERT(!p.use_ssa && !p.force_conflicts && p.allow_recreate && p.allow_in_place_resize);
    ASSERT_EQ_INT(p.limits, POL_LIMITS_MULTIPLIER);
    ASSERT(!p.update_requests_only);
    ASSERT_NEAR(p.limit_multiplier, 2.5, 0);
    ASSERT_EQ_INT(p.min_samples, 500);
    ASSERT_EQ_INT(p.min_history_ms, 2LL * 24 * 3600 * 1000);
    ASSERT_EQ_INT(p.change_threshold_pct, 5);
    ASSERT_EQ_INT(p.max_decrease_pct, 25);
    ASSERT(!p.memory_floor_at_peak && !p.oom_bump);
    ASSERT_EQ_INT(p.oom_min_bump_bytes, 64LL << 20);
    ASSERT_EQ_INT(p.oom_cooldown_ms, 90LL * 60 * 1000);
    ASSERT_EQ_INT(p.nexclude, 2);
    ASSERT(pol_excludes_container(&p, "istio-proxy"));
    ASSERT(!pol_excludes_container(&p, "app"));
    ASSERT(p.include_init_containers);
    ASSERT_EQ_INT(p.reconcile_ms, 30000);

    /* Effective spec → parse → the same effective spec. */
    cJSON *s1 = pol_spec_to_json(&p);
    ASSERT_NOT_NULL(s1);
    char *t1 = cJSON_PrintUnformatted(s1);
    ASSERT_EQ_INT(parse_spec(t1, &q, &err), 0);
    cJSON *s2 = pol_spec_to_json(&q);
    char *t2 = cJSON_PrintUnformatted(s2);
    ASSERT_STR_EQ(t1, t2);
    ASSERT_STR_CONTAINS(t1, "\"rollingWindow\":\"168h\"");
    ASSERT_STR_CONTAINS(t1, "\"cooldown\":\"1h30m\"");
    ASSERT_STR_CONTAINS(t1, "\"minIncrease\":\"64Mi\"");
    ASSERT_EQ_INT(q.cpu.max.value, 2000);
    free(t1);
    free(t2);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    pol_release(&p);
    pol_release(&q);
}

/* Each bad spec yields exactly one error, with this exact text. */
static void test_every_bad_field(void)
{
    static const struct {
        const char *spec; /* appended after MIN_SPEC */
        const char *msg;
    } cases[] = {
        {",\"mode\":\"auto\"}",
         "spec.mode: unsupported value \"auto\" (want one of Auto, Recommend, Disabled)"},
        {",\"mode\":1}", "spec.mode: must be a string, not a number"},
        {",\"weight\":-1}", "spec.weight: -1 is out of range [0, 1000]"},
        {",\"weight\":1.5}", "spec.weight: must be an integer, not 1.5"},
        {",\"weight\":\"5\"}", "spec.weight: must be a number, not a string"},
        {",\"safetyfactor\":1}", "spec.safetyfactor: unknown field"},
        {",\"metricsConfig\":{\"provider\":\"datadog\"}}",
         "spec.metricsConfig.provider: unsupported value \"datadog\" (want one of prometheus, "
         "metrics-server)"},
        {",\"metricsConfig\":{\"percentile\":\"P75\"}}",
         "spec.metricsConfig.percentile: unsupported value \"P75\" (want one of P50, P90, P95, "
         "P99)"},
        {",\"metricsConfig\":{\"safetyFactor\":0.9}}",
         "spec.metricsConfig.safetyFactor: 0.9 is out of range [1, 10]"},
        {",\"metricsConfig\":{\"safetyFactor\":11}}",
         "spec.metricsConfig.safetyFactor: 11 is out of range [1, 10]"},
        {",\"metricsConfig\":{\"rollingWindow\":\"1 day\"}}",
         "spec.metricsConfig.rollingWindow: \"1 day\" is not a duration (digits and units ms, s, "
         "m, h, d, as in \"1h30m\")"},
        {",\"metricsConfig\":{\"rollingWindow\":\"1m\"}}",
         "spec.metricsConfig.rollingWindow: must be at least 5m"},
        {",\"metricsConfig\":{\"rollingWindow\":\"400d\"}}",
         "spec.metricsConfig.rollingWindow: \"400d\" is longer than 366d"},
        {",\"metricsConfig\":{\"rollingWindow\":24}}",
         "spec.metricsConfig.rollingWindow: must be a duration string like \"24h\", not a number"},
        {",\"metricsConfig\":{\"window\":\"1h\"}}", "spec.metricsConfig.window: unknown field"},
        {",\"metricsConfig\":[]}", "spec.metricsConfig: must be an object, not a list"},
        {",\"resourceBounds\":{\"cpu\":{\"min\":\"abc\"}}}",
         "spec.resourceBounds.cpu.min: \"abc\" is not a quantity"},
        {",\"resourceBounds\":{\"memory\":{\"max\":\"1Qi\"}}}",
         "spec.resourceBounds.memory.max: \"1Qi\" is not a quantity"},
        {",\"resourceBounds\":{\"cpu\":{\"min\":0.5}}}",
         "spec.resourceBounds.cpu.min: 0.5 is not a quantity (write fractions as strings like "
         "\"500m\")"},
        {",\"resourceBounds\":{\"cpu\":{\"min\":true}}}",
         "spec.resourceBounds.cpu.min: must be a quantity (a string like \"100m\" or \"1Gi\"), "
         "not a boolean"},
        {",\"resourceBounds\":{\"cpu\":{\"min\":\"-100m\"}}}",
         "spec.resourceBounds.cpu.min: \"-100m\" must not be negative"},
        {",\"resourceBounds\":{\"cpu\":{\"min\":\"2\",\"max\":\"1500m\"}}}",
         "spec.resourceBounds.cpu.min: \"2\" is greater than max \"1500m\""},
        {",\"resourceBounds\":{\"memory\":{\"min\":\"1Gi\",\"max\":\"1000Mi\"}}}",
         "spec.resourceBounds.memory.min: \"1Gi\" is greater than max \"1000Mi\""},
        {",\"resourceBounds\":{\"memory\":{\"max\":\"0\"}}}",
         "spec.resourceBounds.memory.max: must be greater than zero"},
        {",\"resourceBounds\":{\"gpu\":{}}}", "spec.resourceBounds.gpu: unknown field"},
        {",\"updateStrategy\":{\"strategy\":\"patch\"}}",
         "spec.updateStrategy.strategy: unsupported value \"patch\" (want one of ssa, webhook)"},
        {",\"updateStrategy\":{\"rolloutStrategy\":\"now\"}}",
         "spec.updateStrategy.rolloutStrategy: unsupported value \"now\" (want one of "
         "onNextRestart, immediate)"},
        {",\"updateStrategy\":{\"allowRecreate\":\"yes\"}}",
         "spec.updateStrategy.allowRecreate: must be a boolean, not a string"},
        {",\"updateStrategy\":{\"strategy\":\"ssa\",\"useServerSideApply\":false}}",
         "spec.updateStrategy.useServerSideApply: false contradicts strategy \"ssa\""},
        {",\"updateStrategy\":{\"strategy\":\"webhook\",\"rolloutStrategy\":\"immediate\"}}",
         "spec.updateStrategy.rolloutStrategy: \"immediate\" with strategy \"webhook\" needs "
         "allowInPlaceResize or allowRecreate (the webhook only acts when pods are created)"},
        {",\"updateStrategy\":{\"updateRequestsOnly\":true},\"limitsPolicy\":{\"mode\":"
         "\"KeepRatio\"}}",
         "spec.updateStrategy.updateRequestsOnly: true contradicts limitsPolicy.mode "
         "\"KeepRatio\""},
        {",\"updateStrategy\":{\"updateRequestsOnly\":false},\"limitsPolicy\":{\"mode\":"
         "\"RequestsOnly\"}}",
         "spec.updateStrategy.updateRequestsOnly: false contradicts limitsPolicy.mode "
         "\"RequestsOnly\""},
        {",\"limitsPolicy\":{}}", "spec.limitsPolicy.mode: required"},
        {",\"limitsPolicy\":{\"mode\":\"Multiplier\"}}",
         "spec.limitsPolicy.multiplier: required when mode is \"Multiplier\""},
        {",\"limitsPolicy\":{\"mode\":\"KeepRatio\",\"multiplier\":2}}",
         "spec.limitsPolicy.multiplier: only allowed when mode is \"Multiplier\""},
        {",\"limitsPolicy\":{\"mode\":\"Multiplier\",\"multiplier\":0.5}}",
         "spec.limitsPolicy.multiplier: 0.5 is out of range [1, 100]"},
        {",\"minHistory\":{\"samples\":0}}",
         "spec.minHistory.samples: 0 is out of range [1, 1e+06]"},
        {",\"minHistory\":{\"duration\":\"48h\"}}",
         "spec.minHistory.duration: longer than metricsConfig.rollingWindow (history beyond the "
         "window is never seen)"},
        {",\"changeThresholdPercent\":101}",
         "spec.changeThresholdPercent: 101 is out of range [0, 100]"},
        {",\"maxDecreasePercent\":0}", "spec.maxDecreasePercent: 0 is out of range [1, 100]"},
        {",\"memoryFloorAtPeak\":1}", "spec.memoryFloorAtPeak: must be a boolean, not a number"},
        {",\"oomBump\":{\"minIncrease\":\"lots\"}}",
         "spec.oomBump.minIncrease: \"lots\" is not a quantity"},
        {",\"oomBump\":{\"factor\":0}}", "spec.oomBump.factor: 0 is out of range [1, 10]"},
        {",\"oomBump\":{\"cooldown\":\"1w\"}}",
         "spec.oomBump.cooldown: \"1w\" is not a duration (digits and units ms, s, m, h, d, as in "
         "\"1h30m\")"},
        {",\"excludeContainers\":\"istio-proxy\"}",
         "spec.excludeContainers: must be a list, not a string"},
        {",\"excludeContainers\":[\"Istio_Proxy\"]}",
         "spec.excludeContainers[0]: \"Istio_Proxy\" is not a valid container name"},
        {",\"excludeContainers\":[\"a\",7]}",
         "spec.excludeContainers[1]: must be a string, not a number"},
        {",\"includeInitContainers\":null,\"reconcileInterval\":\"5s\"}",
         "spec.reconcileInterval: must be at least 10s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char spec[1024];
        snprintf(spec, sizeof spec, "%s%s", MIN_SPEC, cases[i].spec);
        pol_policy p;
        operr err = {{0}};
        pol_init(&p);
        int rc = parse_spec(spec, &p, &err);
        if (rc != -EINVAL || p.valid || p.nerrors != 1 || strcmp(p.errors[0], cases[i].msg) != 0)
            test_fail(__FILE__, __LINE__, "case %zu %s: rc %d, %zu errors\n  got  %s\n  want %s", i,
                      cases[i].spec, rc, p.nerrors, p.nerrors ? p.errors[0] : "(none)",
                      cases[i].msg);
        ASSERT_STR_EQ(err.msg, cases[i].msg);
        pol_release(&p);
    }
}

static void test_selector_and_metadata_errors(void)
{
    static const struct {
        const char *doc;
        const char *msg;
    } cases[] = {
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{}}",
         "spec.selector.workloadSelector: required (use {} to select every workload)"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"namespaceSelector\":{}}}}",
         "spec.selector.workloadSelector: required (use {} to select every workload)"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{"
         "\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Equals\",\"values\":[\"b\"]}]}}}}",
         "spec.selector.workloadSelector.matchExpressions[0].operator: unsupported value "
         "\"Equals\" (want In, NotIn, Exists or DoesNotExist)"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{},"
         "\"namespaceSelector\":{\"matchLabels\":{\"bad key\":\"x\"}}}}}",
         "spec.selector.namespaceSelector.matchLabels.bad key: \"bad key\" is not a valid label "
         "key"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{},"
         "\"workloadKinds\":[\"CronJob\"]}}}",
         "spec.selector.workloadKinds[0]: unsupported value \"CronJob\" (want one of Deployment, "
         "StatefulSet, DaemonSet)"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{},"
         "\"workloadKinds\":[\"DaemonSet\",\"DaemonSet\"]}}}",
         "spec.selector.workloadKinds[1]: duplicate value \"DaemonSet\""},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{},"
         "\"workloadKinds\":[]}}}",
         "spec.selector.workloadKinds: must list at least one kind"},
        {"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"selector\":{\"workloadSelector\":{},"
         "\"kinds\":[]}}}",
         "spec.selector.kinds: unknown field"},
        {"{\"metadata\":{},\"spec\":{\"selector\":{\"workloadSelector\":{}}}}",
         "metadata.name: required"},
        {"{\"metadata\":{\"name\":\"p\",\"creationTimestamp\":\"yesterday\"},\"spec\":{"
         "\"selector\":{\"workloadSelector\":{}}}}",
         "metadata.creationTimestamp: \"yesterday\" is not an RFC 3339 UTC time"},
        {"{\"apiVersion\":\"optipod.io/v1\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
         "\"selector\":{\"workloadSelector\":{}}}}",
         "apiVersion: want \"optipod.io/v1alpha1\""},
        {"{\"kind\":\"Policy\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
         "\"selector\":{\"workloadSelector\":{}}}}",
         "kind: want \"OptimizationPolicy\""},
        {"{\"metadata\":{\"name\":\"p\"}}", "spec: required object"},
        {"[]", "policy: must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j = cJSON_Parse(cases[i].doc);
        ASSERT_NOT_NULL(j);
        pol_policy p;
        operr err = {{0}};
        pol_init(&p);
        int rc = pol_parse(j, &p, &err);
        cJSON_Delete(j);
        if (rc != -EINVAL || p.nerrors != 1 || strcmp(p.errors[0], cases[i].msg) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: rc %d, %zu errors\n  got  %s\n  want %s", i,
                      rc, p.nerrors, p.nerrors ? p.errors[0] : "(none)", cases[i].msg);
        pol_release(&p);
    }
}

static void test_errors_are_collected_and_bounded(void)
{
    pol_policy p;
    operr err = {{0}};
    pol_init(&p);
    /* Three independent problems: all three reported, in document order. */
    int rc = parse_spec(MIN_SPEC ",\"mode\":\"On\",\"metricsConfig\":{\"percentile\":\"P1\"},"
                                 "\"resourceBounds\":{\"cpu\":{\"min\":\"x\"}}}",
                        &p, &err);
    ASSERT_EQ_INT(rc, -EINVAL);
    ASSERT_EQ_INT(p.nerrors, 3);
    ASSERT_STR_CONTAINS(p.errors[0], "spec.mode:");
    ASSERT_STR_CONTAINS(p.errors[1], "spec.metricsConfig.percentile:");
    ASSERT_STR_CONTAINS(p.errors[2], "spec.resourceBounds.cpu.min:");
    ASSERT_STR_CONTAINS(err.msg, "spec.mode: unsupported value \"On\"");
    ASSERT_STR_CONTAINS(err.msg, "(and 2 more)");
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(pol_errors_format(&p, &b), 0);
    ASSERT_STR_EQ(opbuf_str(&b),
                  "spec.mode: unsupported value \"On\" (want one of Auto, Recommend, "
                  "Disabled); spec.metricsConfig.percentile: unsupported value \"P1\" "
                  "(want one of P50, P90, P95, P99); spec.resourceBounds.cpu.min: "
                  "\"x\" is not a quantity");
    cJSON *ej = pol_errors_to_json(&p);
    ASSERT_EQ_INT(cJSON_GetArraySize(ej), 3);
    ASSERT_STR_EQ(cJSON_GetArrayItem(ej, 2)->valuestring, p.errors[2]);
    cJSON_Delete(ej);

    /* Twenty unknown fields: sixteen kept, four counted. */
    char spec[2048] = MIN_SPEC;
    for (int i = 0; i < 20; i++)
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), ",\"x%d\":1", i);
    strcat(spec, "}");
    rc = parse_spec(spec, &p, &err);
    ASSERT_EQ_INT(rc, -EINVAL);
    ASSERT_EQ_INT(p.nerrors, POL_MAX_ERRORS);
    ASSERT_EQ_INT(p.dropped, 4);
    ASSERT_STR_EQ(p.errors[15], "spec.x15: unknown field");
    ASSERT_STR_EQ(err.msg, "spec.x0: unknown field (and 19 more)");
    opbuf_reset(&b);
    ASSERT_EQ_INT(pol_errors_format(&p, &b), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "; spec.x15: unknown field (and 4 more)");
    ej = pol_errors_to_json(&p);
    ASSERT_EQ_INT(cJSON_GetArraySize(ej), POL_MAX_ERRORS);
    cJSON_Delete(ej);
    opbuf_release(&b);
    pol_release(&p);
}

static void test_update_requests_only_and_limits_agree(void)
{
    static const struct {
        const char *spec;
        bool uro;
        pol_limits limits;
    } cases[] = {
        {"}", true, POL_LIMITS_REQUESTS_ONLY},
        {",\"updateStrategy\":{\"updateRequestsOnly\":true}}", true, POL_LIMITS_REQUESTS_ONLY},
        {",\"updateStrategy\":{\"updateRequestsOnly\":false}}", false, POL_LIMITS_KEEP_RATIO},
        {",\"limitsPolicy\":{\"mode\":\"KeepRatio\"}}", false, POL_LIMITS_KEEP_RATIO},
        {",\"limitsPolicy\":{\"mode\":\"RequestsOnly\"}}", true, POL_LIMITS_REQUESTS_ONLY},
        {",\"updateStrategy\":{\"updateRequestsOnly\":false},\"limitsPolicy\":{\"mode\":"
         "\"Multiplier\",\"multiplier\":1.5}}",
         false, POL_LIMITS_MULTIPLIER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char spec[512];
        snprintf(spec, sizeof spec, "%s%s", MIN_SPEC, cases[i].spec);
        pol_policy p;
        operr err = {{0}};
        pol_init(&p);
        if (parse_spec(spec, &p, &err))
            test_fail(__FILE__, __LINE__, "case %zu: %s", i, err.msg);
        ASSERT_EQ_INT(p.update_requests_only, cases[i].uro);
        ASSERT_EQ_INT(p.limits, cases[i].limits);
        pol_release(&p);
    }
}

static void test_durations(void)
{
    static const struct {
        const char *s;
        int rc;
        int64_t ms;
        const char *back;
    } cases[] = {
        {"24h", 0, 86400000, "24h"},
        {"1h30m", 0, 5400000, "1h30m"},
        {"90m", 0, 5400000, "1h30m"},
        {"1d", 0, 86400000, "24h"},
        {"500ms", 0, 500, "500ms"},
        {"1m1ms", 0, 60001, "1m1ms"},
        {"0s", 0, 0, "0s"},
        {"2s1h", 0, 3602000, "1h2s"},
        {"366d", 0, 366LL * 86400000, "8784h"},
        {"367d", -ERANGE, 0, NULL},
        {"99999999999999999999d", -ERANGE, 0, NULL},
        {"", -EINVAL, 0, NULL},
        {"h", -EINVAL, 0, NULL},
        {"1", -EINVAL, 0, NULL},
        {"1.5h", -EINVAL, 0, NULL},
        {"-1h", -EINVAL, 0, NULL},
        {"1H", -EINVAL, 0, NULL},
        {"1h ", -EINVAL, 0, NULL},
        {"1us", -EINVAL, 0, NULL},
        {"99999999999999999999x", -EINVAL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t ms = -1;
        int rc = pol_parse_duration(cases[i].s, &ms);
        if (rc != cases[i].rc)
            test_fail(__FILE__, __LINE__, "\"%s\": rc %d want %d", cases[i].s, rc, cases[i].rc);
        /* The parser and the CRD pattern agree on the syntax. */
        ASSERT_EQ_INT(tsch_regex_match(POL_DURATION_PATTERN, cases[i].s), rc != -EINVAL);
        if (rc)
            continue;
        ASSERT_EQ_INT(ms, cases[i].ms);
        char buf[64];
        pol_format_duration(ms, buf, sizeof buf);
        ASSERT_STR_EQ(buf, cases[i].back);
    }
}

/* Build a policy from a spec and metadata for the matching tests. */
static void mk(pol_policy *p, const char *ns, const char *name, const char *created,
               const char *spec)
{
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"creationTimestamp\":\"%s\"},"
             "\"spec\":%s}",
             name, ns, created, spec);
    cJSON *j = cJSON_Parse(doc);
    operr err = {{0}};
    pol_init(p);
    if (!j || pol_parse(j, p, &err) != 0)
        test_fail(__FILE__, __LINE__, "%s: %s", name, err.msg);
    cJSON_Delete(j);
}

static void test_matching(void)
{
    pol_policy own, cross, sts;
    mk(&own, "team", "own", "2024-01-01T00:00:00Z",
       "{\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"optimize\":\"true\"}}}}");
    mk(&cross, "optipod", "cross", "2024-01-01T00:00:00Z",
       "{\"selector\":{\"workloadSelector\":{},\"namespaceSelector\":{\"matchExpressions\":[{"
       "\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\"]}]}}}");
    mk(&sts, "team", "sts", "2024-01-01T00:00:00Z",
       "{\"selector\":{\"workloadSelector\":{},\"workloadKinds\":[\"StatefulSet\"]}}");
    cJSON *yes = cJSON_Parse("{\"optimize\":\"true\"}");
    cJSON *no = cJSON_Parse("{\"optimize\":\"false\"}");
    cJSON *prod = cJSON_Parse("{\"env\":\"prod\"}");
    pol_target t = {POL_KIND_DEPLOYMENT, "team", yes, NULL};
    ASSERT(pol_matches(&own, &t));
    t.labels = no;
    ASSERT(!pol_matches(&own, &t));
    t.labels = NULL;
    ASSERT(!pol_matches(&own, &t));
    t.labels = yes;
    t.namespace = "other"; /* without namespaceSelector: own namespace only */
    ASSERT(!pol_matches(&own, &t));
    ASSERT(!pol_matches(&cross, &t));
    t.ns_labels = prod;
    ASSERT(pol_matches(&cross, &t));
    t.kind = POL_KIND_DAEMONSET;
    ASSERT(pol_matches(&cross, &t));
    t.namespace = "team";
    ASSERT(!pol_matches(&sts, &t));
    t.kind = POL_KIND_STATEFULSET;
    ASSERT(pol_matches(&sts, &t));
    /* An invalid policy matches nothing. */
    own.valid = false;
    t.kind = POL_KIND_DEPLOYMENT;
    ASSERT(!pol_matches(&own, &t));
    cJSON_Delete(yes);
    cJSON_Delete(no);
    cJSON_Delete(prod);
    pol_release(&own);
    pol_release(&cross);
    pol_release(&sts);
}

static void test_precedence(void)
{
    const char *all = "{\"selector\":{\"workloadSelector\":{}},\"weight\":%d,\"mode\":\"%s\"}";
    char spec[256];
    pol_policy p[6];
    snprintf(spec, sizeof spec, all, 10, "Auto");
    mk(&p[0], "team", "heavy-new", "2024-06-01T00:00:00Z", spec);
    snprintf(spec, sizeof spec, all, 10, "Recommend");
    mk(&p[1], "team", "heavy-old", "2024-01-01T00:00:00Z", spec);
    snprintf(spec, sizeof spec, all, 0, "Auto");
    mk(&p[2], "team", "light", "2023-01-01T00:00:00Z", spec);
    snprintf(spec, sizeof spec, all, 10, "Auto");
    mk(&p[3], "team", "heavy-old-b", "2024-01-01T00:00:00Z", spec);
    snprintf(spec, sizeof spec, all, 1000, "Disabled");
    mk(&p[4], "elsewhere", "not-matching", "2020-01-01T00:00:00Z", spec);
    snprintf(spec, sizeof spec, all, 10, "Auto");
    mk(&p[5], "team", "heavy-old-a", "2024-01-01T00:00:00Z", spec);
    ASSERT_EQ_INT(p[1].created, 1704067200);

    const pol_policy *in[] = {&p[0], &p[1], &p[2], &p[3], &p[4], NULL, &p[5]};
    const pol_policy *ranked[7];
    pol_target t = {POL_KIND_DEPLOYMENT, "team", NULL, NULL};
    size_t n = pol_rank(in, 7, &t, ranked);
    ASSERT_EQ_INT(n, 5);
    ASSERT_STR_EQ(ranked[0]->name, "heavy-old");   /* weight, then oldest, then name */
    ASSERT_STR_EQ(ranked[1]->name, "heavy-old-a"); /* same age: by name */
    ASSERT_STR_EQ(ranked[2]->name, "heavy-old-b");
    ASSERT_STR_EQ(ranked[3]->name, "heavy-new");
    ASSERT_STR_EQ(ranked[4]->name, "light");
    /* The same winner whatever the input order. */
    const pol_policy *rev[] = {&p[5], &p[4], &p[3], &p[2], &p[1], &p[0]};
    ASSERT_EQ_INT(pol_rank(rev, 6, &t, ranked), 5);
    ASSERT_STR_EQ(ranked[0]->name, "heavy-old");
    ASSERT_CMP_INT(pol_compare(&p[1], &p[0]), <, 0);
    ASSERT_CMP_INT(pol_compare(&p[0], &p[1]), >, 0);
    ASSERT_EQ_INT(pol_compare(&p[0], &p[0]), 0);
    /* A heavy Disabled policy wins and so opts the workload out. */
    t.namespace = "elsewhere";
    ASSERT_EQ_INT(pol_rank(in, 7, &t, ranked), 1);
    ASSERT_EQ_INT(ranked[0]->mode, POL_MODE_DISABLED);
    /* Nothing matches: no winner. */
    t.namespace = "nowhere";
    ASSERT_EQ_INT(pol_rank(in, 7, &t, ranked), 0);
    for (int i = 0; i < 6; i++)
        pol_release(&p[i]);
}

static void test_enum_names(void)
{
    ASSERT_STR_EQ(pol_mode_name(POL_MODE_DISABLED), "Disabled");
    ASSERT_STR_EQ(pol_provider_name(POL_PROVIDER_METRICS_SERVER), "metrics-server");
    ASSERT_STR_EQ(pol_provider_name(POL_PROVIDER_DEFAULT), "");
    ASSERT_STR_EQ(pol_strategy_name(POL_STRATEGY_WEBHOOK), "webhook");
    ASSERT_STR_EQ(pol_rollout_name(POL_ROLLOUT_IMMEDIATE), "immediate");
    ASSERT_STR_EQ(pol_limits_name(POL_LIMITS_KEEP_RATIO), "KeepRatio");
    ASSERT_STR_EQ(pol_kind_name(POL_KIND_STATEFULSET), "StatefulSet");
    ASSERT_EQ_INT(pol_kind_from_name("DaemonSet"), POL_KIND_DAEMONSET);
    ASSERT_EQ_INT(pol_kind_from_name("Job"), 0);
    ASSERT_EQ_INT(pol_kind_from_name(NULL), 0);
}

int main(void)
{
    TEST_RUN(test_seed_policies_parse);
    TEST_RUN(test_seed_policy_values);
    TEST_RUN(test_defaults);
    TEST_RUN(test_full_spec_round_trips);
    TEST_RUN(test_every_bad_field);
    TEST_RUN(test_selector_and_metadata_errors);
    TEST_RUN(test_errors_are_collected_and_bounded);
    TEST_RUN(test_update_requests_only_and_limits_agree);
    TEST_RUN(test_durations);
    TEST_RUN(test_matching);
    TEST_RUN(test_precedence);
    TEST_RUN(test_enum_names);
    return test_summary();
}
