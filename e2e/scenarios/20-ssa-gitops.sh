#!/usr/bin/env bash
# The controller against a real API server, next to a GitOps tool played by
# kubectl's server-side apply:
#  1. install the CRD; Git (field manager argocd-controller) applies a
#     two-container Deployment; a real Prometheus on loopback is backfilled
#     with usage for the pods the ReplicaSet created (no kubelet needed: the
#     pods may stay Pending);
#  2. labelling it brings it under an Auto policy; optipod writes only the requests, as
#     manager "optipod", reports SSAConflict (argocd-controller owns them) and
#     ResourcesApplied Events, and owns nothing else in managedFields;
#  3. Git removes the sidecar: the GitOps apply succeeds (no 422,
#     kubernetes#128102) and optipod never writes the sidecar back;
#  4. Flux (kustomize-controller, --force-conflicts) takes the values back
#     every interval: optipod stops with a GitOpsConflictLoop Event naming the
#     Flux remedy, and writes nothing more;
#  5. however soon Flux takes them back, optipod's writes of the Deployment
#     are at least --min-write-interval (30 s) apart.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 to read managedFields"

e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null

deployment() { # $1: 1 = with the sidecar
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $E2E_NS, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}}
EOF
  if [ "$1" = 1 ]; then
    cat <<EOF
      - name: sidecar
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: 100m, memory: 128Mi}}
EOF
  fi
}

git_apply() { # manager, with-sidecar, extra flags...
  local mgr=$1 side=$2
  shift 2
  deployment "$side" | kubectl apply --server-side --field-manager="$mgr" "$@" -f - 2>&1
}

git_apply argocd-controller 1 >/dev/null

# Pods from the ReplicaSet controller (Pending is fine).
pods=$(e2e_pods app=web 2)

# ---- usage: backfill 3 h of samples (every 30 s, ending 15 min ago) --------------------------
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200 sidecar:0.02:41943040
e2e_prometheus "$E2E_TMP/usage.om"

# ---- the policy and the controller -------------------------------------------------------------
kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: web, namespace: $E2E_NS}
spec:
  mode: Auto
  selector: {workloadSelector: {matchLabels: {optipod.io/optimize: "true"}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: 10s
EOF

log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" --health-probe-bind-address 0 --metrics-bind-address 0 >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

# Not labelled yet: nothing selects it, nothing is written.
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: skipped: no policy selects" 30
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}')" = "1" ] ||
  e2e_fail "optipod changed a Deployment no policy selects"
kubectl -n "$E2E_NS" label deployment web optipod.io/optimize=true >/dev/null
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: applied" 60

owned() { # manager operation → the fields it owns, one path per line
  kubectl -n "$E2E_NS" get deployment web --show-managed-fields -o json | python3 -c '
import json, sys
mgr, op = sys.argv[1], sys.argv[2]
def walk(node, path):
    for k, v in node.items():
        if k == ".":
            print(path or "/"); continue
        p = path + "/" + k
        if not v: print(p)
        else: walk(v, p)
for e in json.load(sys.stdin)["metadata"].get("managedFields", []):
    if e["manager"] == mgr and e["operation"] == op:
        walk(e.get("fieldsV1", {}), "")
' "$1" "$2"
}

req() { # container resource → the live request
  kubectl -n "$E2E_NS" get deployment web -o \
    jsonpath="{.spec.template.spec.containers[?(@.name==\"$1\")].resources.requests.$2}"
}

[ "$(req app cpu)" = "500m" ] || e2e_fail "app cpu request is '$(req app cpu)', want 500m"
fields=$(owned optipod Update)
[ -n "$fields" ] || e2e_fail "optipod owns nothing after applying"
if echo "$fields" | grep -vE '/f:resources(/|$)|^/f:spec$|^/f:spec/f:template$|^/f:spec/f:template/f:spec$|/f:containers$|k:\{"name":"[a-z]+"\}$'; then
  e2e_fail "optipod owns fields outside the pod template's resources (above)"
fi
[ -z "$(owned optipod Apply | grep resources || true)" ] || e2e_fail "optipod applied resources (it must write them as an Update)"
[ -n "$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector reason=ResourcesApplied -o name)" ] ||
  e2e_fail "no ResourcesApplied Event"
conflict=$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector reason=SSAConflict \
  -o jsonpath='{.items[*].note}')
grep -q argocd-controller <<<"$conflict" || e2e_fail "no SSAConflict Event naming argocd-controller: $conflict"

# ---- Git removes the sidecar: accepted at once, never written back -----------------------------
out=$(git_apply argocd-controller 0 --force-conflicts) || e2e_fail "GitOps apply without the sidecar failed: $out"
containers() { kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.spec.template.spec.containers[*].name}'; }
[ "$(containers)" = app ] || e2e_fail "containers after Git removed the sidecar: '$(containers)', want 'app'"
sleep 15 # more than one reconcile interval
[ "$(containers)" = app ] || e2e_fail "optipod wrote the sidecar back: containers '$(containers)'"

# ---- Flux takes the values back every interval: loop detection --------------------------------
for i in 1 2 3 4 5; do
  for _ in $(seq 300); do
    [ "$(req app cpu)" != "1" ] && break
    grep -q "GitOpsConflictLoop" "$log" && break
    sleep 0.1
  done
  grep -q "GitOpsConflictLoop" "$log" && break
  git_apply kustomize-controller 0 --force-conflicts >/dev/null || e2e_fail "Flux apply $i failed"
done
e2e_wait_log "$log" "GitOpsConflictLoop" 30
note=$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector reason=GitOpsConflictLoop \
  -o jsonpath='{.items[*].note}')
echo "$note" | grep -q kustomize-controller || e2e_fail "GitOpsConflictLoop Event does not name kustomize-controller: $note"
echo "$note" | grep -q "/spec/template/spec/containers/0/resources/requests/cpu" ||
  e2e_fail "GitOpsConflictLoop Event has no JSON pointer remedy: $note"
git_apply kustomize-controller 0 --force-conflicts >/dev/null
sleep 15
[ "$(req app cpu)" = "1" ] || e2e_fail "optipod applied again after stopping (cpu $(req app cpu))"

# ---- --min-write-interval (default 30 s): Flux took the values back within a second of each of
# ---- optipod's writes, a cause to write again at once; optipod wrote again only once the
# ---- interval had passed (the reconciles in between say so), never sooner
gaps=$(e2e_min_gap "$log" "reconcile Deployment/$E2E_NS/web: applied" 30) || exit 1
grep -q "reconcile Deployment/$E2E_NS/web: skipped: the write waits .* --min-write-interval" "$log" ||
  e2e_fail "no reconcile waited for --min-write-interval"
echo "writes of web $gaps apart (--min-write-interval 30 s, the default)"

e2e_stop_controller "$pid" "$log"
kubectl delete optimizationpolicy -n "$E2E_NS" web --ignore-not-found >/dev/null
