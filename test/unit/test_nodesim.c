/*
 * nodesim's pure steps (support/nodesim.h): what the node simulator does for a
 * pod in each state, and the bodies it sends, read back as JSON the way the API
 * server reads them.
 */
#include "support/nodesim.h"
#include "test.h"

#include <cJSON.h>
#include <errno.h>

#define T0 1714557600 /* 2024-05-01T10:00:00Z */

/* A pod projection from JSON; `extra_meta` and `status` are spliced in. */
static kproj_obj *pod(const char *node, const char *extra_meta, const char *status)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\",\"uid\":\"u-1\","
             "\"resourceVersion\":\"7\"%s},"
             "\"spec\":{%s%s%s\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox\"}],"
             "\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1\",\"resources\":"
             "{\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":"
             "\"128Mi\"}}},{\"name\":\"side\",\"image\":\"envoy\"}]},"
             "\"status\":%s}",
             extra_meta ? extra_meta : "", node ? "\"nodeName\":\"" : "", node ? node : "",
             node ? "\"," : "", status ? status : "{\"phase\":\"Pending\"}");
    cJSON *j = cJSON_Parse(json);
    ASSERT_NOT_NULL(j);
    kproj_obj *o = NULL;
    int rc = kproj_from_json(j, KPROJ_POD, &o);
    cJSON_Delete(j);
    ASSERT_EQ_INT(rc, 0);
    return o;
}

static void test_decides_each_state(void)
{
    struct {
        const char *node, *meta, *status;
        enum nsim_action want;
    } cases[] = {
        {NULL, NULL, NULL, NSIM_BIND},
        {"", NULL, NULL, NSIM_BIND},
        {"sim", NULL, NULL, NSIM_REPORT},
        {"sim", NULL, "{\"phase\":\"Running\"}", NSIM_NONE},
        {"other", NULL, NULL, NSIM_NONE},
        {"sim", ",\"deletionTimestamp\":\"2024-05-01T10:00:00Z\"", "{\"phase\":\"Running\"}",
         NSIM_FINALIZE},
        /* unbound pods are deleted by the API server at once; another node's are not ours */
        {NULL, ",\"deletionTimestamp\":\"2024-05-01T10:00:00Z\"", NULL, NSIM_NONE},
        {"other", ",\"deletionTimestamp\":\"2024-05-01T10:00:00Z\"", NULL, NSIM_NONE},
        /* a server that keeps containerStatuses[].resources: echo a resize, not twice */
        {"sim", NULL,
         "{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\",\"resources\":"
         "{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":"
         "\"128Mi\"}}},{\"name\":\"side\"}]}",
         NSIM_ECHO},
        {"sim", NULL,
         "{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\",\"resources\":"
         "{\"requests\":{\"memory\":\"64Mi\",\"cpu\":\"250m\"},\"limits\":{\"memory\":"
         "\"128Mi\"}}},{\"name\":\"side\"}]}",
         NSIM_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kproj_obj *o = pod(cases[i].node, cases[i].meta, cases[i].status);
        enum nsim_action got = nsim_decide(o, "sim");
        kproj_free(o);
        if (got != cases[i].want)
            test_fail(__FILE__, __LINE__, "case %zu: %s, want %s", i, nsim_action_name(got),
                      nsim_action_name(cases[i].want));
    }
    ASSERT_EQ_INT(nsim_decide(NULL, "sim"), NSIM_NONE);
}

static cJSON *parse(opbuf *b)
{
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    if (!j)
        test_fail(__FILE__, __LINE__, "not JSON: %s", opbuf_str(b));
    return j;
}

/* The value at a '/'-separated path of object keys and array indexes. */
static const cJSON *at(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && j; k = strtok_r(NULL, "/", &save))
        j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(k)) : cJSON_GetObjectItem(j, k);
    return j;
}

static const char *s_at(const cJSON *j, const char *path)
{
    const char *s = cJSON_GetStringValue(at(j, path));
    return s ? s : "(absent)";
}

static void test_report_echoes_resources(void)
{
    kproj_obj *o = pod("sim", NULL, NULL);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(nsim_pod_status_body(&b, o, NSIM_REPORT, "127.0.0.1", T0), 0);
    cJSON *j = parse(&b);
    ASSERT_STR_EQ(s_at(j, "status/phase"), "Running");
    ASSERT_STR_EQ(s_at(j, "status/podIP"), "127.0.0.1");
    ASSERT_STR_EQ(s_at(j, "status/startTime"), "2024-05-01T10:00:00Z");
    const char *conds[] = {"Initialized", "Ready", "ContainersReady", "PodScheduled"};
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "status/conditions/%d/type", i);
        ASSERT_STR_EQ(s_at(j, p), conds[i]);
        snprintf(p, sizeof p, "status/conditions/%d/status", i);
        ASSERT_STR_EQ(s_at(j, p), "True");
    }
    ASSERT_STR_EQ(s_at(j, "status/initContainerStatuses/0/state/terminated/reason"), "Completed");
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/name"), "app");
    ASSERT(cJSON_IsTrue(at(j, "status/containerStatuses/0/ready")));
    ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "status/containerStatuses/0/restartCount")), 0);
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/state/running/startedAt"),
                  "2024-05-01T10:00:00Z");
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/containerID"), "nodesim://u-1/app");
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/resources/requests/cpu"), "250m");
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/resources/limits/memory"), "128Mi");
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/allocatedResources/memory"), "64Mi");
    /* a container without resources reports none */
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/1/name"), "side");
    ASSERT_NULL(at(j, "status/containerStatuses/1/allocatedResources"));
    ASSERT_NULL(at(j, "status/containerStatuses/2"));
    cJSON_Delete(j);

    /* An echo leaves phase and conditions (the Ready transition time) alone. */
    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_pod_status_body(&b, o, NSIM_ECHO, "127.0.0.1", T0), 0);
    j = parse(&b);
    ASSERT_NULL(at(j, "status/phase"));
    ASSERT_NULL(at(j, "status/conditions"));
    ASSERT_STR_EQ(s_at(j, "status/containerStatuses/0/resources/requests/cpu"), "250m");
    cJSON_Delete(j);
    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_pod_status_body(&b, o, NSIM_BIND, "127.0.0.1", T0), -EINVAL);
    opbuf_release(&b);
    kproj_free(o);
}

static void test_binding_and_delete_carry_the_uid(void)
{
    kproj_obj *o = pod(NULL, NULL, NULL);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(nsim_binding_body(&b, o, "sim"), 0);
    cJSON *j = parse(&b);
    ASSERT_STR_EQ(s_at(j, "kind"), "Binding");
    ASSERT_STR_EQ(s_at(j, "metadata/name"), "web-1");
    ASSERT_STR_EQ(s_at(j, "metadata/namespace"), "shop");
    ASSERT_STR_EQ(s_at(j, "metadata/uid"), "u-1");
    ASSERT_STR_EQ(s_at(j, "target/kind"), "Node");
    ASSERT_STR_EQ(s_at(j, "target/name"), "sim");
    cJSON_Delete(j);
    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_delete_body(&b, o), 0);
    j = parse(&b);
    ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "gracePeriodSeconds")), 0);
    ASSERT_STR_EQ(s_at(j, "preconditions/uid"), "u-1");
    cJSON_Delete(j);
    opbuf_release(&b);
    kproj_free(o);
}

static void test_node_and_lease(void)
{
    nsim_capacity cap = {"8", "16Gi", "110"};
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(nsim_node_body(&b, "sim", "127.0.0.1", &cap, T0), 0);
    cJSON *j = parse(&b);
    ASSERT_STR_EQ(s_at(j, "kind"), "Node");
    const cJSON *labels = at(j, "metadata/labels"); /* label keys hold '/': no path */
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(labels, NSIM_LABEL)), "true");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "kubernetes.io/hostname")),
                  "sim");
    ASSERT_STR_EQ(s_at(j, "status/allocatable/cpu"), "8");
    ASSERT_STR_EQ(s_at(j, "status/capacity/memory"), "16Gi");
    ASSERT_STR_EQ(s_at(j, "status/conditions/0/type"), "Ready");
    ASSERT_STR_EQ(s_at(j, "status/conditions/0/status"), "True");
    ASSERT_STR_EQ(s_at(j, "status/conditions/0/lastHeartbeatTime"), "2024-05-01T10:00:00Z");
    ASSERT_STR_EQ(s_at(j, "status/addresses/0/address"), "127.0.0.1");
    ASSERT_STR_EQ(s_at(j, "status/addresses/1/type"), "Hostname");
    cJSON_Delete(j);

    /* The heartbeat sends the lists whole (a merge patch replaces lists). */
    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_node_status_body(&b, "sim", "127.0.0.1", &cap, T0 + 10), 0);
    j = parse(&b);
    ASSERT_STR_EQ(s_at(j, "status/conditions/0/lastHeartbeatTime"), "2024-05-01T10:00:10Z");
    ASSERT_STR_EQ(s_at(j, "status/addresses/1/address"), "sim");
    ASSERT_NULL(at(j, "metadata"));
    cJSON_Delete(j);

    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_lease_body(&b, "sim", "node-uid", T0), 0);
    j = parse(&b);
    ASSERT_STR_EQ(s_at(j, "metadata/namespace"), "kube-node-lease");
    ASSERT_STR_EQ(s_at(j, "metadata/ownerReferences/0/uid"), "node-uid");
    ASSERT_STR_EQ(s_at(j, "spec/holderIdentity"), "sim");
    ASSERT_STR_EQ(s_at(j, "spec/renewTime"), "2024-05-01T10:00:00.000000Z");
    ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "spec/leaseDurationSeconds")), 40);
    cJSON_Delete(j);
    opbuf_reset(&b);
    ASSERT_EQ_INT(nsim_lease_renew_body(&b, T0 + 10), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "{\"spec\":{\"renewTime\":\"2024-05-01T10:00:10.000000Z\"}}");
    opbuf_release(&b);
}

/* A body that does not fit the buffer is an error, never half a document. */
static void test_small_buffer_fails_whole(void)
{
    kproj_obj *o = pod("sim", NULL, NULL);
    opbuf b;
    opbuf_init(&b, 64);
    ASSERT_CMP_INT(nsim_pod_status_body(&b, o, NSIM_REPORT, "127.0.0.1", T0), <, 0);
    ASSERT_EQ_INT(b.len, 0);
    opbuf_release(&b);
    kproj_free(o);
}

int main(void)
{
    TEST_RUN(test_decides_each_state);
    TEST_RUN(test_report_echoes_resources);
    TEST_RUN(test_binding_and_delete_carry_the_uid);
    TEST_RUN(test_node_and_lease);
    TEST_RUN(test_small_buffer_fails_whole);
    return test_summary();
}
