#!/usr/bin/env bash
# Webhook injection on real pod creation, with the certificate the controller manages itself:
#  1. install the CRD; a namespace labelled optipod.io/webhook=enabled for the workload and one
#     for the webhook's Secret (the controller never mutates pods in its own namespace);
#  2. a MutatingWebhookConfiguration with a url clientConfig pointing at this host and no
#     caBundle; the controller runs out of cluster, creates the certificate Secret (a CA and a
#     serving cert whose names include the host address) and patches the CA into caBundle;
#  3. a Deployment annotated for the webhook strategy: the pods the ReplicaSet controller
#     creates carry the annotated requests and limits; a container without annotations is left
#     as its template says;
#  4. a second controller run reuses the Secret (no new certificate, no write);
#  5. everything is deleted again, the webhook configuration first.
#
# The API server must reach this host. Detected for kind (docker network "kind") and k3d
# (docker network "k3d-<cluster>"): the controller listens on 0.0.0.0 and the API server dials
# the network's gateway address (Linux docker; with Docker Desktop the gateway is not this host:
# set E2E_WEBHOOK_HOST to the host's LAN address). An API server that listens on loopback on
# this host (a control plane run from binaries: the kubeconfig's server is 127.0.0.1 or
# localhost and no container proxy holds its port) reaches us on 127.0.0.1. For any other
# cluster set E2E_WEBHOOK_HOST to an IPv4 address of this host that the API server can reach
# (and let that port through any firewall); otherwise the scenario says why it skips and
# exits 77 (run.sh counts it as skipped).
# Needs no kubelet: pods may stay Pending, admission happens at creation.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_skip() {
  echo "e2e: SKIPPED 30-webhook: $*"
  exit 77
}

# ---- where the API server can reach us ----------------------------------------------------------
gateway_of() { # docker network → its IPv4 gateway
  docker network inspect "$1" -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null |
    tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | head -n 1 || true
}
# The API server's own address when it listens on loopback on this host and no container
# proxy (kind and minikube forward a loopback port into a container) holds its port.
local_apiserver() {
  local server hostport h p holder
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null) || return 1
  hostport=${server#*://}
  hostport=${hostport%%/*}
  case "$hostport" in
  \[::1\]:*) h=::1 p=${hostport##*:} ;;
  *:*) h=${hostport%:*} p=${hostport##*:} ;;
  *) h=$hostport p=443 ;;
  esac
  case "$h" in
  127.*.*.* | localhost | ::1) ;;
  *) return 1 ;;
  esac
  if command -v ss >/dev/null 2>&1; then
    holder=$(ss -Hltnp "sport = :$p" 2>/dev/null | grep -oE 'users:\(\("[^"]+"' | head -n 1 | cut -d'"' -f2)
    case "$holder" in
    docker-proxy | rootlesskit | slirp4netns | vpnkit* | com.docker*) return 1 ;;
    esac
  fi
  echo 127.0.0.1
}

ctx=$(kubectl config current-context 2>/dev/null || true)
host=${E2E_WEBHOOK_HOST:-}
case "$ctx" in
kind-* | k3d-*) ;;
*) [ -n "$host" ] || host=$(local_apiserver || true) ;;
esac
[ -n "$host" ] && [ -z "${E2E_WEBHOOK_HOST:-}" ] && echo "the API server listens on loopback: the webhook on $host"
if [ -z "$host" ]; then
  command -v docker >/dev/null 2>&1 ||
    e2e_skip "cannot tell how the API server reaches this host (context '$ctx', no docker); set E2E_WEBHOOK_HOST to this host's address as the API server sees it"
  case "$ctx" in
  kind-*) host=$(gateway_of kind) ;;
  k3d-*) host=$(gateway_of "$ctx") ;;
  *) e2e_skip "context '$ctx' is neither kind-* nor k3d-* and its API server does not listen on this host's loopback: set E2E_WEBHOOK_HOST to an address of this host the API server can reach" ;;
  esac
  [ -n "$host" ] || e2e_skip "no IPv4 gateway on the docker network of context '$ctx'; set E2E_WEBHOOK_HOST"
fi
echo "$host" | grep -qE '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' || e2e_fail "E2E_WEBHOOK_HOST '$host' is not an IPv4 address"
command -v python3 >/dev/null || e2e_fail "needs python3 (a free port, JSON)"
port=$(e2e_free_ports 1 0.0.0.0)

SYS_NS="$E2E_NS-sys"
MWC="$E2E_NS-webhook"
SECRET="optipod-e2e-webhook-tls"
e2e_webhook_cleanup() {
  # The webhook configuration first: nothing may call a stopped webhook.
  kubectl delete mutatingwebhookconfiguration "$MWC" --ignore-not-found >/dev/null 2>&1 || true
  e2e_cleanup
  kubectl delete namespace "$SYS_NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
}
trap e2e_webhook_cleanup EXIT

e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null
kubectl label namespace "$E2E_NS" optipod.io/webhook=enabled >/dev/null
kubectl create namespace "$SYS_NS" >/dev/null

# failurePolicy Fail, and only for this scenario's namespace: an unreachable or untrusted
# webhook shows up as a FailedCreate on the ReplicaSet with the API server's reason, instead
# of pods silently created unchanged.
kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $MWC}
webhooks:
- name: pods.optipod.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  reinvocationPolicy: Never
  clientConfig: {url: "https://$host:$port/mutate-pods"}
  rules: [{apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: Namespaced}]
  namespaceSelector:
    matchLabels: {optipod.io/webhook: enabled, kubernetes.io/metadata.name: $E2E_NS}
EOF

run_controller() { # log file
  "$OPTIPOD_BIN" -v 3 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
    --health-probe-bind-address 0 --metrics-bind-address 0 \
    --webhook-port "$port" --webhook-service optipod-e2e-webhook --webhook-namespace "$SYS_NS" \
    --webhook-secret "$SECRET" --webhook-config-name "$MWC" --webhook-extra-sans "$host" \
    >"$1" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
}


log="$E2E_TMP/optipod.log"
run_controller "$log"
e2e_wait_log "$log" "secret '$SYS_NS/$SECRET' written with a new certificate" 30
e2e_wait_log "$log" "webhook on https port $port" 10
e2e_wait_log "$log" "caBundle of mutatingwebhookconfiguration '$MWC' updated" 30

# The caBundle is exactly the CA in the Secret (base64 of the same PEM).
ca=$(kubectl -n "$SYS_NS" get secret "$SECRET" -o jsonpath='{.data.ca\.crt}')
bundle=$(kubectl get mutatingwebhookconfiguration "$MWC" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
[ -n "$ca" ] || e2e_fail "secret $SYS_NS/$SECRET has no ca.crt"
[ "$ca" = "$bundle" ] || e2e_fail "caBundle of $MWC is not the Secret's CA"
[ "$(kubectl -n "$SYS_NS" get secret "$SECRET" -o jsonpath='{.type}')" = "kubernetes.io/tls" ] ||
  e2e_fail "secret $SYS_NS/$SECRET is not kubernetes.io/tls"
kubectl get mutatingwebhookconfiguration "$MWC" --show-managed-fields -o json | python3 -c '
import json, sys
ok = any(e["manager"] == "optipod" and "caBundle" in json.dumps(e.get("fieldsV1", {}))
         for e in json.load(sys.stdin)["metadata"].get("managedFields", []))
sys.exit(0 if ok else 1)' || e2e_fail "caBundle is not owned by field manager optipod"

# ---- a Deployment for the webhook strategy ------------------------------------------------------
# replicas 0 first: the ReplicaSet exists (and is in the controller's cache) before any pod is
# created, so pod -> ReplicaSet -> Deployment resolves from the cache at admission.
kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: $E2E_NS
  labels: {app: web}
  annotations:
    optipod.io/webhook-enabled: "true"
    optipod.io/strategy: webhook
    optipod.io/cpu-request.app: 250m
    optipod.io/memory-request.app: 300Mi
    optipod.io/memory-limit.app: 600Mi
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 2Gi}}
      - name: sidecar
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: 100m, memory: 128Mi}}
EOF
e2e_wait_log "$log" "deployments $E2E_NS/web (added|updated)" 30
e2e_wait_log "$log" "replicasets $E2E_NS/web-[a-z0-9]+ (added|updated)" 60
kubectl -n "$E2E_NS" scale deployment web --replicas=2 >/dev/null

pods=""
for _ in $(seq 300); do
  pods=$(kubectl -n "$E2E_NS" get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
  [ "$(echo "$pods" | wc -w)" -ge 2 ] && break
  sleep 0.1
done
if [ "$(echo "$pods" | wc -w)" -lt 2 ]; then
  kubectl -n "$E2E_NS" get events --field-selector reason=FailedCreate \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' >&2 || true
  e2e_fail "the ReplicaSet created no pods (its FailedCreate events, above, say why the API server could not call https://$host:$port)"
fi

res() { # pod container field
  kubectl -n "$E2E_NS" get pod "$1" -o \
    jsonpath="{.spec.containers[?(@.name==\"$2\")].resources.$3}"
}
for p in $pods; do
  [ "$(res "$p" app requests.cpu)" = "250m" ] || e2e_fail "pod $p: app cpu request '$(res "$p" app requests.cpu)', want 250m"
  [ "$(res "$p" app requests.memory)" = "300Mi" ] || e2e_fail "pod $p: app memory request '$(res "$p" app requests.memory)', want 300Mi"
  [ "$(res "$p" app limits.memory)" = "600Mi" ] || e2e_fail "pod $p: app memory limit '$(res "$p" app limits.memory)', want 600Mi"
  [ "$(res "$p" sidecar requests.cpu)" = "100m" ] || e2e_fail "pod $p: sidecar cpu request changed to '$(res "$p" sidecar requests.cpu)'"
  [ "$(res "$p" sidecar requests.memory)" = "128Mi" ] || e2e_fail "pod $p: sidecar memory request changed"
done
# The template itself never changes: injection happens at admission only.
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}')" = "1" ] ||
  e2e_fail "the Deployment's pod template was changed"

e2e_stop_controller "$pid" "$log"

# ---- a second run reuses the Secret --------------------------------------------------------------
rv=$(kubectl -n "$SYS_NS" get secret "$SECRET" -o jsonpath='{.metadata.resourceVersion}')
log2="$E2E_TMP/optipod2.log"
run_controller "$log2"
e2e_wait_log "$log2" "webhook on https port $port" 30
grep -q "written with a new certificate" "$log2" && e2e_fail "the second run wrote a new certificate"
[ "$(kubectl -n "$SYS_NS" get secret "$SECRET" -o jsonpath='{.metadata.resourceVersion}')" = "$rv" ] ||
  e2e_fail "the second run changed the Secret"
# shellcheck disable=SC2086 # one argument per pod name
kubectl -n "$E2E_NS" delete pod $pods --wait=false >/dev/null
for _ in $(seq 300); do
  fresh=$(kubectl -n "$E2E_NS" get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
  n=0
  for p in $fresh; do
    echo " $pods " | grep -q " $p " || n=$((n + 1))
  done
  [ "$n" -ge 1 ] && break
  sleep 0.1
done
[ "$n" -ge 1 ] || e2e_fail "no replacement pod was created after the restart"
for p in $fresh; do
  echo " $pods " | grep -q " $p " && continue
  [ "$(res "$p" app requests.cpu)" = "250m" ] || e2e_fail "replacement pod $p: app cpu request '$(res "$p" app requests.cpu)', want 250m"
done
e2e_stop_controller "$pid" "$log2"

e2e_no_errors "$log" "$log2"
