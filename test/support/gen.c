#include "support/gen.h"

#include <stdio.h>

/* Pieces every generated pod spec shares (no % in them: they sit in formats). */
#define GEN_TERMINATION                                                                            \
    "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":\"File\","   \
    "\"imagePullPolicy\":\"IfNotPresent\""
#define GEN_SIDECAR                                                                                \
    "{\"name\":\"sidecar\",\"image\":\"registry.example.com/mesh/proxy:1.20\",\"resources\":{"     \
    "\"requests\":{\"cpu\":\"10m\",\"memory\":\"32Mi\"}}," GEN_TERMINATION "}"
#define GEN_RESTART_POLICY "\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30"
#define GEN_POD_POLICY                                                                             \
    GEN_RESTART_POLICY ",\"dnsPolicy\":\"ClusterFirst\",\"securityContext\":{},\"schedulerName\":" \
                       "\"default-scheduler\""

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
        "\"timeoutSeconds\":1,\"periodSeconds\":10,\"successThreshold\":1,\"failureThreshold\":3}"
        "," GEN_TERMINATION "}," GEN_SIDECAR "]," GEN_POD_POLICY "}},"
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

/* The values gen_deployment gives Deployment i's app container. */
static void gen_app_values(unsigned i, unsigned *cpu, unsigned *mem)
{
    *cpu = 50 + (i * 37) % 950;
    *mem = 64 + (i * 53) % 1984;
}

int gen_replicaset(opbuf *out, const char *ns, unsigned i)
{
    const char *ts = "2026-11-22T02:02:40Z";
    unsigned cpu, mem, replicas = 1 + i % 5;
    gen_app_values(i, &cpu, &mem);
    return opbuf_printf(
        out,
        "{\"kind\":\"ReplicaSet\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":"
        "\"svc-%u-68bdbdcb94\",\"namespace\":\"%s\",\"uid\":\"%08x-5b1e-4f3a-8d2c-%012x\","
        "\"resourceVersion\":\"%u\",\"generation\":1,\"creationTimestamp\":\"%s\",\"labels\":{"
        "\"app\":\"svc-%u\",\"optimize\":\"true\",\"pod-template-hash\":\"68bdbdcb94\"},"
        "\"annotations\":{\"deployment.kubernetes.io/desired-replicas\":\"%u\","
        "\"deployment.kubernetes.io/max-replicas\":\"%u\",\"deployment.kubernetes.io/revision\":"
        "\"3\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
        "\"name\":\"svc-%u\",\"uid\":\"%08x-c80d-4763-9a31-%012x\",\"controller\":true,"
        "\"blockOwnerDeletion\":true}],\"managedFields\":[{\"manager\":"
        "\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"apps/v1\","
        "\"time\":\"%s\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{"
        "\"f:annotations\":{\".\":{},\"f:deployment.kubernetes.io/desired-replicas\":{},"
        "\"f:deployment.kubernetes.io/max-replicas\":{},\"f:deployment.kubernetes.io/revision\":"
        "{}},\"f:labels\":{\".\":{},\"f:app\":{},\"f:optimize\":{},\"f:pod-template-hash\":{}},"
        "\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"%08x-c80d-4763-9a31-%012x\\\"}\":{}}}"
        ","
        "\"f:spec\":{\"f:replicas\":{},\"f:selector\":{},\"f:template\":{\"f:metadata\":{"
        "\"f:labels\":{\".\":{},\"f:app\":{},\"f:optimize\":{},\"f:pod-template-hash\":{}}},"
        "\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{},"
        "\"k:{\\\"name\\\":\\\"sidecar\\\"}\":{}}}}}}}]},"
        "\"spec\":{\"replicas\":%u,\"selector\":{\"matchLabels\":{\"app\":\"svc-%u\","
        "\"pod-template-hash\":\"68bdbdcb94\"}},\"template\":{\"metadata\":{"
        "\"creationTimestamp\":null,\"labels\":{\"app\":\"svc-%u\",\"optimize\":\"true\","
        "\"pod-template-hash\":\"68bdbdcb94\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
        "\"image\":\"registry.example.com/team-%u/svc-%u:v1.%u.0\",\"resources\":{\"limits\":{"
        "\"memory\":\"%uMi\"},\"requests\":{\"cpu\":\"%um\",\"memory\":\"%uMi\"}}," GEN_TERMINATION
        "}," GEN_SIDECAR "]," GEN_POD_POLICY "}}},"
        "\"status\":{\"replicas\":%u,\"fullyLabeledReplicas\":%u,\"readyReplicas\":%u,"
        "\"availableReplicas\":%u,\"observedGeneration\":1}}",
        i, ns, i, i, 2000 + i, ts, i, replicas, replicas + 1, i, i, i, ts, i, i, replicas, i, i,
        i % 17, i, i % 9, mem * 2, cpu, mem, replicas, replicas, replicas, replicas);
}

int gen_pod(opbuf *out, const char *ns, unsigned i, unsigned k, int oom)
{
    const char *ts = "2026-11-22T02:03:35Z";
    unsigned cpu, mem;
    gen_app_values(i, &cpu, &mem);
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    char sfx[6];
    unsigned x = i * 7919u + k * 104729u + 12345u;
    for (int c = 0; c < 5; c++, x /= 27)
        sfx[c] = alnum[x % 27];
    sfx[5] = 0;
    char last[256] = "{}";
    if (oom)
        snprintf(last, sizeof last,
                 "{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\",\"startedAt\":"
                 "\"2026-11-22T02:03:40Z\",\"finishedAt\":\"2026-11-22T03:%02u:10Z\","
                 "\"containerID\":\"containerd://%08x\"}}",
                 k % 60, i);
    return opbuf_printf(
        out,
        "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"svc-%u-68bdbdcb94-%s\","
        "\"generateName\":\"svc-%u-68bdbdcb94-\",\"namespace\":\"%s\",\"uid\":"
        "\"%08x-%04x-4c8b-89ec-da77eb712910\",\"resourceVersion\":\"%u\",\"creationTimestamp\":"
        "\"%s\",\"labels\":{\"app\":\"svc-%u\",\"optimize\":\"true\",\"pod-template-hash\":"
        "\"68bdbdcb94\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
        "\"name\":\"svc-%u-68bdbdcb94\",\"uid\":\"%08x-5b1e-4f3a-8d2c-%012x\",\"controller\":true,"
        "\"blockOwnerDeletion\":true}],\"managedFields\":[{\"manager\":\"kube-controller-manager\","
        "\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"%s\",\"fieldsType\":"
        "\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:generateName\":{},\"f:labels\":{\".\":{},"
        "\"f:app\":{},\"f:optimize\":{},\"f:pod-template-hash\":{}},\"f:ownerReferences\":{\".\":"
        "{},\"k:{\\\"uid\\\":\\\"%08x-5b1e-4f3a-8d2c-%012x\\\"}\":{}}},\"f:spec\":{"
        "\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{\".\":{},\"f:image\":{},"
        "\"f:imagePullPolicy\":{},\"f:name\":{},\"f:resources\":{\".\":{},\"f:limits\":{},"
        "\"f:requests\":{}}},\"k:{\\\"name\\\":\\\"sidecar\\\"}\":{\".\":{},\"f:image\":{},"
        "\"f:name\":{},\"f:resources\":{\".\":{},\"f:requests\":{}}}},\"f:dnsPolicy\":{},"
        "\"f:restartPolicy\":{},\"f:schedulerName\":{},\"f:securityContext\":{},"
        "\"f:terminationGracePeriodSeconds\":{}}}},{\"manager\":\"kubelet\",\"operation\":"
        "\"Update\",\"apiVersion\":\"v1\",\"time\":\"%s\",\"fieldsType\":\"FieldsV1\","
        "\"fieldsV1\":{\"f:status\":{\"f:conditions\":{\"k:{\\\"type\\\":\\\"ContainersReady\\\"}"
        "\":"
        "{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},"
        "\"f:type\":{}},\"k:{\\\"type\\\":\\\"Initialized\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
        "\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},"
        "\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
        "\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}}},\"f:containerStatuses\":{},"
        "\"f:hostIP\":{},\"f:phase\":{},\"f:podIP\":{},\"f:podIPs\":{\".\":{},"
        "\"k:{\\\"ip\\\":\\\"10.244.%u.%u\\\"}\":{\".\":{},\"f:ip\":{}}},\"f:startTime\":{}}},"
        "\"subresource\":\"status\"}]},"
        "\"spec\":{\"volumes\":[{\"name\":\"kube-api-access-%s\",\"projected\":{\"sources\":[{"
        "\"serviceAccountToken\":{\"expirationSeconds\":3607,\"path\":\"token\"}},{\"configMap\":"
        "{\"name\":\"kube-root-ca.crt\",\"items\":[{\"key\":\"ca.crt\",\"path\":\"ca.crt\"}]}},"
        "{\"downwardAPI\":{\"items\":[{\"path\":\"namespace\",\"fieldRef\":{\"apiVersion\":\"v1\","
        "\"fieldPath\":\"metadata.namespace\"}}]}}],\"defaultMode\":420}}],\"containers\":[{"
        "\"name\":\"app\",\"image\":\"registry.example.com/team-%u/svc-%u:v1.%u.0\","
        "\"resources\":{\"limits\":{\"memory\":\"%uMi\"},\"requests\":{\"cpu\":\"%um\","
        "\"memory\":\"%uMi\"}},\"volumeMounts\":[{\"name\":\"kube-api-access-%s\",\"readOnly\":"
        "true,\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}]," GEN_TERMINATION
        "}," GEN_SIDECAR "]," GEN_RESTART_POLICY ",\"dnsPolicy\":\"ClusterFirst\","
        "\"serviceAccountName\":\"default\",\"serviceAccount\":\"default\","
        "\"nodeName\":\"node-%u\",\"securityContext\":{},\"schedulerName\":\"default-scheduler\","
        "\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
        "\"effect\":\"NoExecute\",\"tolerationSeconds\":300},{\"key\":"
        "\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"effect\":\"NoExecute\","
        "\"tolerationSeconds\":300}],\"priority\":0,\"enableServiceLinks\":true,"
        "\"preemptionPolicy\":\"PreemptLowerPriority\"},"
        "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Initialized\",\"status\":"
        "\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},{\"type\":\"Ready\","
        "\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},{\"type\":"
        "\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":"
        "\"%s\"},{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,"
        "\"lastTransitionTime\":\"%s\"}],\"hostIP\":\"172.18.0.%u\",\"podIP\":\"10.244.%u.%u\","
        "\"podIPs\":[{\"ip\":\"10.244.%u.%u\"}],\"startTime\":\"%s\",\"containerStatuses\":[{"
        "\"name\":\"app\",\"state\":{\"running\":{\"startedAt\":\"%s\"}},\"lastState\":%s,"
        "\"ready\":true,\"restartCount\":%u,\"image\":\"registry.example.com/team-%u/"
        "svc-%u:v1.%u.0\","
        "\"imageID\":\"registry.example.com/team-%u/svc-%u@sha256:%08x%08x\",\"containerID\":"
        "\"containerd://%08x%08x\",\"started\":true},{\"name\":\"sidecar\",\"state\":{\"running\":"
        "{\"startedAt\":\"%s\"}},\"lastState\":{},\"ready\":true,\"restartCount\":0,\"image\":"
        "\"registry.example.com/mesh/proxy:1.20\",\"imageID\":"
        "\"registry.example.com/mesh/proxy@sha256:4f1c0b1e\",\"containerID\":"
        "\"containerd://%08x%08x\",\"started\":true}],\"qosClass\":\"Burstable\"}}",
        i, sfx, i, ns, i, k, 3000 + i * 4 + k, ts, i, i, i, i, ts, i, i, ts, i % 250, k, sfx,
        i % 17, i, i % 9, mem * 2, cpu, mem, sfx, i % 50, ts, ts, ts, ts, i % 50, i % 250, k,
        i % 250, k, ts, ts, last, oom ? 1u : 0u, i % 17, i, i % 9, i % 17, i, i, k, i, k, ts, k, i);
}

int gen_namespace(opbuf *out, const char *name)
{
    return opbuf_printf(out,
                        "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                        "\"%s\",\"labels\":{\"kubernetes.io/metadata.name\":\"%s\",\"team\":"
                        "\"%s\"}},\"spec\":{\"finalizers\":[\"kubernetes\"]},\"status\":{"
                        "\"phase\":\"Active\"}}",
                        name, name, name);
}
