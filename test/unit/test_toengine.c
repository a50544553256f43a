#include "test.h"

#include <cJSON.h>

#include "policy/toengine.h"

static void parse(const char *json, pol_policy *p)
{
    cJSON *obj = cJSON_Parse(json);
    ASSERT_NOT_NULL(obj);
    operr err = {{0}};
    pol_init(p);
    int rc = pol_parse(obj, p, &err);
    cJSON_Delete(obj);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "pol_parse: %s", err.msg);
}

/* The CRD's defaults are what the engine applies when a policy says nothing. */
static void test_defaults_follow_the_crd(void)
{
    pol_policy p;
    parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"apps\"},"
          "\"spec\":{\"selector\":{\"workloadSelector\":{}}}}",
          &p);
    eng_policy e;
    pol_engine_policy(&p, &e);
    ASSERT_NEAR(e.percentile, p.percentile / 100.0, 1e-9);
    ASSERT_NEAR(e.safety_factor, p.safety_factor, 1e-9);
    ASSERT_EQ_INT(e.min_samples, p.min_samples);
    ASSERT_EQ_INT(e.min_history_s, p.min_history_ms / 1000);
    ASSERT_NEAR(e.change_threshold, p.change_threshold_pct / 100.0, 1e-9);
    ASSERT_EQ_INT(e.mem_floor_peak, p.memory_floor_at_peak);
    ASSERT_EQ_INT(e.include_init, 0);
    operr err = {{0}};
    ASSERT_EQ_INT(eng_policy_check(&e, &err), 0);
    pol_release(&p);
}

static void test_every_knob_maps(void)
{
    pol_policy p;
    parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"apps\"},\"spec\":{"
          "\"mode\":\"Auto\",\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"a\":\"b\"}}},"
          "\"metricsConfig\":{\"provider\":\"prometheus\",\"rollingWindow\":\"24h\","
          "\"percentile\":\"P99\",\"safetyFactor\":1.3},"
          "\"resourceBounds\":{\"cpu\":{\"min\":\"100m\",\"max\":\"4\"},"
          "\"memory\":{\"min\":\"256Mi\",\"max\":\"8Gi\"}},"
          "\"updateStrategy\":{\"strategy\":\"ssa\",\"updateRequestsOnly\":false}}}",
          &p);
    eng_policy e;
    pol_engine_policy(&p, &e);
    ASSERT_NEAR(e.percentile, 0.99, 1e-9);
    ASSERT_NEAR(e.safety_factor, 1.3, 1e-9);
    ASSERT_EQ_INT(e.cpu.min, 100);
    ASSERT_EQ_INT(e.cpu.max, 4000);
    ASSERT_EQ_INT(e.mem.min, 256LL << 20);
    ASSERT_EQ_INT(e.mem.max, 8LL << 30);
    ASSERT(e.limits != ENG_LIMITS_REQUESTS_ONLY);
    pol_release(&p);

    parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"apps\"},\"spec\":{"
          "\"selector\":{\"workloadSelector\":{}},"
          "\"updateStrategy\":{\"updateRequestsOnly\":true}}}",
          &p);
    pol_engine_policy(&p, &e);
    ASSERT_EQ_INT(e.limits, ENG_LIMITS_REQUESTS_ONLY);
    pol_release(&p);
}

int main(void)
{
    TEST_RUN(test_defaults_follow_the_crd);
    TEST_RUN(test_every_knob_maps);
    return test_summary();
}
