#!/usr/bin/env bash
# What users see is true (issue 13), against a real API server:
#  1. both CRDs; a Deployment created with plain `kubectl apply` (client-side,
#     manager kubectl-client-side-apply); usage in a real Prometheus;
#  2. a policy switched Recommend -> Auto (ssa) -> Auto (webhook) -> Disabled:
#     after each switch the OptimizationRecommendation record (kubectl get
#     oprec) and `kubectl optipod recommendations -o json` / `explain` show
#     the right mode and strategy; the forced take-over from kubectl is a
#     Normal SSATakeover, never a Warning, and Conflict is not True;
#  3. `kubectl optipod release`, a value set by hand, three reconcile periods:
#     optipod writes nothing; `kubectl optipod manage`: it applies again.
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 to read the plugin's JSON"
KOP=${KUBECTL_OPTIPOD:-$root/build/rel/kubectl-optipod}
[ -x "$KOP" ] || e2e_fail "kubectl-optipod not built ($KOP)"

e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null

kubectl apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $E2E_NS, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}}
YAML
pods=
for _ in $(seq 300); do
  pods=$(kubectl -n "$E2E_NS" get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
  [ -n "$pods" ] && break
  sleep 0.1
done
[ -n "$pods" ] || e2e_fail "no pod for the Deployment (is kube-controller-manager running?)"
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

policy() { # mode [strategy]
  kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<YAML
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: web, namespace: $E2E_NS}
spec:
  mode: $1
  selector: {workloadSelector: {matchLabels: {app: web}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: 10s
  updateStrategy: {strategy: ${2:-ssa}}
YAML
}

rec() { kubectl -n "$E2E_NS" get oprec deployment-web -o jsonpath="$1" 2>/dev/null; }
wait_record() { # mode strategy
  for _ in $(seq 600); do
    [ "$(rec '{.spec.mode}/{.spec.strategy}')" = "$1/$2" ] && return 0
    sleep 0.1
  done
  kubectl -n "$E2E_NS" get oprec -o yaml >&2 || true
  e2e_fail "the record never said mode $1, strategy $2"
}

# The plugin agrees with the record: the right mode and strategy, for every selected workload.
plugin_py='
import json, sys
mode, strategy = sys.argv[1], sys.argv[2]
recs = [r for r in json.load(sys.stdin)["recommendations"] if r["name"] == "web"]
assert recs, "web not listed"
r = recs[0]
assert (r["mode"], r["strategy"]) == (mode, strategy), (r["mode"], r["strategy"])
assert isinstance(r["applied"], bool)
'
check_plugin() { # mode strategy
  local json
  json=$("$KOP" recommendations -n "$E2E_NS" -o json) || e2e_fail "kubectl optipod recommendations failed"
  python3 -c "$plugin_py" "$1" "$2" <<<"$json" || e2e_fail "recommendations -o json: $json"
  "$KOP" explain deploy/web -n "$E2E_NS" | grep -qF "(mode $1, strategy $2)" ||
    e2e_fail "explain does not say mode $1, strategy $2: $("$KOP" explain deploy/web -n "$E2E_NS" 2>&1)"
}

policy Recommend
log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" --prometheus-url "$E2E_PROM_URL" \
  --health-probe-bind-address 0 --metrics-bind-address 0 >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

wait_record Recommend none
check_plugin Recommend none
[ -n "$(rec '{.status.containers[0].recommended.cpuRequest}')" ] || e2e_fail "Recommend: no recommendation in the record"
[ "$(rec '{.metadata.ownerReferences[0].name}')" = web ] || e2e_fail "the record is not owned by the Deployment"

req() { kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}'; }
policy Auto
wait_record Auto ssa
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: applied" 60
check_plugin Auto ssa
warnings=$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector type=Warning -o jsonpath='{.items[*].reason}')
[ -z "$warnings" ] || e2e_fail "Warning Events for a plain kubectl apply: $warnings"
[ -n "$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector reason=SSATakeover -o name)" ] ||
  e2e_fail "no SSATakeover Event naming kubectl's manager"
cond=$(kubectl -n "$E2E_NS" get optpol web -o jsonpath='{.status.conditions[?(@.type=="Conflict")].status}')
[ "$cond" != True ] || e2e_fail "Conflict=True after a plain kubectl apply"

policy Auto webhook
wait_record Auto webhook
check_plugin Auto webhook
policy Disabled
wait_record Disabled none
check_plugin Disabled none

# ---- release sticks until manage ----------------------------------------------------------------
policy Auto
wait_record Auto ssa
"$KOP" release deploy/web -n "$E2E_NS" >"$E2E_TMP/release.txt" || e2e_fail "release: $(cat "$E2E_TMP/release.txt")"
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.annotations.optipod\.io/managed}')" = false ] ||
  e2e_fail "release did not mark the Deployment"
kubectl -n "$E2E_NS" patch deployment web --type strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"900m"}}}]}}}}' >/dev/null
gen=$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}')
sleep 35 # three reconcile periods
[ "$(req)" = 900m ] || e2e_fail "optipod wrote a released Deployment: cpu $(req)"
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}')" = "$gen" ] ||
  e2e_fail "the released Deployment's spec changed"
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: skipped: released" 5
"$KOP" manage deploy/web -n "$E2E_NS" | grep -q "managed again" || e2e_fail "manage did not say managed again"
for _ in $(seq 300); do
  [ "$(req)" != 900m ] && break
  sleep 0.1
done
[ "$(req)" != 900m ] || e2e_fail "after manage optipod never applied again (cpu $(req))"
echo "records follow every mode and strategy; release held for 3 periods; manage applied $(req)"
