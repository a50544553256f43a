#include "support/gen.h"

/* managedFields of an applier owning the spec it applied, and of the
 * controller owning status: the bulk of a real object's bytes. */
static const char gen_fields_apply[] =
    "{\"f:metadata\":{\"f:labels\":{\"f:app\":{},\"f:team\":{},\"f:optimize\":{}}},"
    "\"f:spec\":{\"f:replicas\":{},\"f:selector\":{},\"f:template\":{\"f:metadata\":{\"f:labels\":"
    "{\"f:app\":{},\"f:optimize\":{}}},\"f:spec\":{\"f:containers\":{"
    "\"k:{\\\"name\\\":\\\"app\\\"}\":{\".\":{},\"f:env\":{\"k:{\\\"name\\\":\\\"LOG_LEVEL\\\"}\":"
    "{\".\":{},\"f:name\":{},\"f:value\":{}},\"k:{\\\"name\\\":\\\"PORT\\\"}\":{\".\":{},"
    "\"f:name\":{},\"f:value\":{}}},\"f:image\":{},\"f:livenessProbe\":{\"f:httpGet\":{"
    "\"f:path\":{},\"f:port\":{}}},\"f:name\":{},\"f:ports\":{\"k:{\\\"containerPort\\\":8080,"
    "\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{},\"f:name\":{}}},"
    "\"f:readinessProbe\":{\"f:httpGet\":{\"f:path\":{},\"f:port\":{}}},\"f:resources\":{"
    "\"f:limits\":{\"f:memory\":{}},\"f:requests\":{\"f:cpu\":{},\"f:memory\":{}}}},"
    "\"k:{\\\"name\\\":\\\"sidecar\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{},\"f:resources\":"
    "{\"f:requests\":{\"f:cpu\":{},\"f:memory\":{}}}}}}}}}";

static const char gen_fields_status[] =
    "{\"f:metadata\":{\"f:annotations\":{\".\":{},\"f:deployment.kubernetes.io/revision\":{}}},"
    "\"f:status\":{\"f:availableReplicas\":{},\"f:conditions\":{\".\":{},"
    "\"k:{\\\"type\\\":\\\"Available\\\"}\":{\".\":{},\"f:lastTransitionTime\":{},"
    "\"f:lastUpdateTime\":{},\"f:message\":{},\"f:reason\":{},\"f:status\":{},\"f:type\":{}},"
    "\"k:{\\\"type\\\":\\\"Progressing\\\"}\":{\".\":{},\"f:lastTransitionTime\":{},"
    "\"f:lastUpdateTime\":{},\"f:message\":{},\"f:reason\":{},\"f:status\":{},\"f:type\":{}}},"
    "\"f:observedGeneration\":{},\"f:readyReplicas\":{},\"f:replicas\":{},"
    "\"f:updatedReplicas\":{}}}";

int gen_deployment(opbuf *out, const char *ns, unsigned i)
{
    const char *ts = "2026-11-22T02:02:40Z";
    unsigned cpu = 50 + (i * 37) % 950;
    unsigned mem = 64 + (i * 53) % 1984;
    unsigned replicas = 1 + i % 5;
    return opbuf_printf(
        out,
        "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"svc-%u\","
        "\"namespace\":\"%s\",\"uid\":\"%08x-c80d-4763-9a31-%012x\",\"resourceVersion\":\"%u\","
        "\"generation\":3,\"creationTimestamp\":\"%s\",\"labels\":{\"app\":\"svc-%u\","
        "\"team\":\"team-%u\",\"optimize\":\"true\",\"app.kubernetes.io/name\":\"svc-%u\","
        "\"app.kubernetes.io/part-of\":\"platform\",\"app.kubernetes.io/"
        "managed-by\":\"argocd\"},\"annotations\":{"
        "\"deployment.kubernetes.io/revision\":\"3\",\"argocd.argoproj.io/tracking-id\":"
        "\"platform:apps/Deployment:%s/svc-%u\",\"kubectl.kubernetes.io/restartedAt\":"
        "\"2026-11-20T09:14:03Z\"},\"managedFields\":["
        "{\"manager\":\"argocd-controller\",\"operation\":\"Apply\",\"apiVersion\":\"apps/v1\","
        "\"time\":\"%s\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":%s},"
        "{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":"
        "\"apps/v1\",\"time\":\"%s\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":%s,"
        "\"subresource\":\"status\"}]},"
        "\"spec\":{\"replicas\":%u,\"selector\":{\"matchLabels\":{\"app\":\"svc-%u\"}},"
        "\"template\":{\"metadata\":{\"creationTimestamp\":null,\"labels\":{\"app\":\"svc-%u\","
        "\"optimize\":\"true\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
        "\"image\":\"registry.example.com/team-%u/svc-%u:v1.%u.0\",\"ports\":[{\"name\":\"http\","
        "\"containerPort\":8080,\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"LOG_LEVEL\","
        "\"value\":\"info\"},{\"name\":\"PORT\",\"value\":\"8080\"},{\"name\":"
        "\"OTEL_EXPORTER_OTLP_ENDPOINT\",\"value\":\"http://otel-collector.observability:4317\"},"
        "{\"name\":\"JAVA_TOOL_OPTIONS\",\"value\":\"-XX:MaxRAMPercentage=75 -XX:+UseG1GC\"},"
        "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\","
        "\"fieldPath\":\"metadata.name\"}}},{\"name\":\"POD_NAMESPACE\",\"valueFrom\":{"
        "\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.namespace\"}}}],"
        "\"resources\":{\"limits\":{"
        "\"memory\":\"%uMi\"},\"requests\":{\"cpu\":\"%um\",\"memory\":\"%uMi\"}},"
        "\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080,\"scheme\":\"HTTP\"},"
        "\"timeoutSeconds\":1,\"periodSeconds\":10,\"successThreshold\":1,\"failureThreshold\":3},"
        "\"readinessProbe\":{\"httpGet\":{\"path\":\"/ready\",\"port\":8080,\"scheme\":\"HTTP\"},"
        "\"timeoutSeconds\":1,\"periodSeconds\":10,\"successThreshold\":1,\"failureThreshold\":3},"
        "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":"
        "\"File\",\"imagePullPolicy\":\"IfNotPresent\"},{\"name\":\"sidecar\",\"image\":"
        "\"registry.example.com/mesh/proxy:1.20\",\"resources\":{\"requests\":{\"cpu\":\"10m\","
        "\"memory\":\"32Mi\"}},\"terminationMessagePath\":\"/dev/termination-log\","
        "\"terminationMessagePolicy\":\"File\",\"imagePullPolicy\":\"IfNotPresent\"}],"
        "\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"
        "\"ClusterFirst\",\"securityContext\":{},\"schedulerName\":\"default-scheduler\"}},"
        "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxUnavailable\":\"25%%\","
        "\"maxSurge\":\"25%%\"}},\"revisionHistoryLimit\":10,\"progressDeadlineSeconds\":600},"
        "\"status\":{\"observedGeneration\":3,\"replicas\":%u,\"updatedReplicas\":%u,"
        "\"readyReplicas\":%u,\"availableReplicas\":%u,\"conditions\":[{\"type\":\"Available\","
        "\"status\":\"True\",\"lastUpdateTime\":\"%s\",\"lastTransitionTime\":\"%s\",\"reason\":"
        "\"MinimumReplicasAvailable\",\"message\":\"Deployment has minimum availability.\"},"
        "{\"type\":\"Progressing\",\"status\":\"True\",\"lastUpdateTime\":\"%s\","
        "\"lastTransitionTime\":\"%s\",\"reason\":\"NewReplicaSetAvailable\",\"message\":"
        "\"ReplicaSet \\\"svc-%u-68bdbdcb94\\\" has successfully progressed.\"}]}}",
        i, ns, i, i, 1000 + i, ts, i, i % 17, i, ns, i, ts, gen_fields_apply, ts, gen_fields_status,
        replicas, i, i, i % 17, i, i % 9, mem * 2, cpu, mem, replicas, replicas, replicas, replicas,
        ts, ts, ts, ts, i);
}
