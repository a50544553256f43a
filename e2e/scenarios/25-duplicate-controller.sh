#!/usr/bin/env bash
# A second optipod on the real API server, played by kubectl: after optipod has
# written a Deployment's requests, a server-side apply under field manager
# "optipod" (--force-conflicts, as another optipod process without the same
# Lease would send) sets other values. The running optipod must:
#  1. emit exactly one Warning Event DuplicateController on the Deployment, set
#     the policy's Conflict condition to reason DuplicateController and count
#     optipod_duplicate_controller_total 1 on /metrics;
#  2. write nothing to the Deployment for the reconcile period (20 s here;
#     --min-write-interval 5 s, so the period is what holds the write back);
#  3. then evaluate it again and converge: its recommendation back on the
#     Deployment, the Conflict condition cleared, still one Event and a count of 1.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 to read Events"

PERIOD=20 # the policy's reconcileInterval (20s below), seconds

e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null

kubectl apply --server-side --field-manager=argocd-controller -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $E2E_NS, labels: {app: web, optipod.io/optimize: "true"}}
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

pods=$(e2e_pods app=web 2)

e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: web, namespace: $E2E_NS}
spec:
  mode: Auto
  selector: {workloadSelector: {matchLabels: {optipod.io/optimize: "true"}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  maxDecreasePercent: 100
  reconcileInterval: 20s
EOF

log="$E2E_TMP/optipod.log"
mport=$(e2e_free_ports 1)
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" --health-probe-bind-address 0 \
  --metrics-bind-address "127.0.0.1:$mport" --min-write-interval 5s >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

applied="reconcile Deployment/$E2E_NS/web: applied"
e2e_wait_log "$log" "$applied" 60

req() { # resource → the app container's live request
  kubectl -n "$E2E_NS" get deployment web -o \
    jsonpath="{.spec.template.spec.containers[?(@.name==\"app\")].resources.requests.$1}"
}
gen() { kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}'; }
cpu=$(req cpu) mem=$(req memory)
[ "$cpu" != "1" ] || e2e_fail "optipod logged a write but the cpu request is still 1"
echo "optipod wrote app requests cpu $cpu, memory $mem"

dup_events() { # the DuplicateController Events of the Deployment: "count type series" per line
  kubectl -n "$E2E_NS" get events.events.k8s.io -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    r = e.get("regarding", {})
    if e.get("reason") == "DuplicateController" and r.get("kind") == "Deployment" and r.get("name") == "web":
        print(e.get("type"), (e.get("series") or {}).get("count", 0))'
}
conflict_reason() {
  kubectl -n "$E2E_NS" get optimizationpolicy web \
    -o jsonpath='{.status.conditions[?(@.type=="Conflict")].reason}'
}
dup_total() { e2e_metric optipod_duplicate_controller_total "$mport"; }

[ "$(dup_total)" = 0 ] || e2e_fail "optipod_duplicate_controller_total is $(dup_total) before any second writer"

# ---- a second optipod: other values under field manager optipod -------------------------------
# Only the requests, as optipod owns them; kubectl's own schema check wants a whole
# Deployment (selector), the server merges the apply with the live object and validates that.
out=$(kubectl apply --server-side --field-manager=optipod --force-conflicts --validate=false -f - 2>&1 <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $E2E_NS}
spec:
  template:
    spec:
      containers:
      - name: app
        resources: {requests: {cpu: 700m, memory: 300Mi}}
EOF
) || e2e_fail "the second optipod's apply failed: $out"
[ "$(req cpu)" = 700m ] || e2e_fail "cpu after the second optipod's apply is '$(req cpu)', want 700m"
gen_dup=$(gen)

e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: .*DuplicateController" $((PERIOD + 10))
seen=$(date +%s)
for _ in $(seq 100); do
  [ -n "$(dup_events)" ] && [ "$(conflict_reason)" = DuplicateController ] && [ "$(dup_total)" = 1 ] && break
  sleep 0.1
done
events=$(dup_events)
[ "$(echo "$events" | grep -c .)" = 1 ] || e2e_fail "want one DuplicateController Event on web, got: '$events'"
[ "$events" = "Warning 0" ] || e2e_fail "the DuplicateController Event is '$events', want a Warning without a series"
note=$(kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector reason=DuplicateController \
  -o jsonpath='{.items[0].note}')
grep -q "is 700m under field manager optipod, but this optipod last wrote $cpu" <<<"$note" ||
  e2e_fail "the DuplicateController Event does not name the values: $note"
[ "$(conflict_reason)" = DuplicateController ] ||
  e2e_fail "the policy's Conflict condition reason is '$(conflict_reason)', want DuplicateController"
[ "$(dup_total)" = 1 ] || e2e_fail "optipod_duplicate_controller_total is $(dup_total), want 1"
echo "DuplicateController: one Warning Event, Conflict reason DuplicateController, optipod_duplicate_controller_total 1"

# ---- left alone for the reconcile period -------------------------------------------------------
# From the detection (the rollout rule of the first write allowed a write by then) until 1 s
# before the period ends; the controller's log says the same to the millisecond below.
end=$((seen + PERIOD - 1))
while [ "$(date +%s)" -lt "$end" ]; do
  [ "$(gen)" = "$gen_dup" ] || e2e_fail "optipod wrote web within the reconcile period (generation $(gen), was $gen_dup)"
  [ "$(req cpu)" = 700m ] || e2e_fail "web's cpu request changed within the reconcile period: $(req cpu)"
  sleep 0.5
done
[ "$(grep -c "$applied" "$log")" = 1 ] || e2e_fail "optipod logged a write of web within the reconcile period"

# ---- then it converges -------------------------------------------------------------------------
end=$(($(date +%s) + 2 * PERIOD))
while [ "$(date +%s)" -lt "$end" ]; do
  [ "$(req cpu)" = "$cpu" ] && [ "$(req memory)" = "$mem" ] && [ "$(conflict_reason)" != DuplicateController ] && break
  sleep 0.5
done
[ "$(req cpu)" = "$cpu" ] && [ "$(req memory)" = "$mem" ] ||
  e2e_fail "web did not converge: cpu $(req cpu) memory $(req memory), want $cpu $mem"
[ "$(conflict_reason)" != DuplicateController ] ||
  e2e_fail "the Conflict condition still says DuplicateController after the period"
# By the controller's own clock: from seeing the other write to its next write of web.
klog_s() { grep -E "$1" "$log" | sed -n "${2}p" | awk '{ split($2, t, ":"); print t[1] * 3600 + t[2] * 60 + t[3] }'; }
t_dup=$(klog_s "reconcile Deployment/$E2E_NS/web: .*DuplicateController: .* changed" 1)
t_next=$(klog_s "$applied" 2)
[ -n "$t_dup" ] && [ -n "$t_next" ] || e2e_fail "no detection or no second write in the log"
gap=$(awk -v a="$t_dup" -v b="$t_next" 'BEGIN { d = b - a; if (d < 0) d += 86400; printf "%.1f", d }')
awk -v g="$gap" -v p="$PERIOD" 'BEGIN { exit !(g >= p - 0.1) }' ||
  e2e_fail "optipod wrote web again $gap s after seeing the other writer, want at least $PERIOD s"
sleep 3 # a reconcile after converging: no second Event, no second count
[ "$(dup_events | grep -c .)" = 1 ] || e2e_fail "more DuplicateController Events after converging: $(dup_events)"
[ "$(dup_total)" = 1 ] || e2e_fail "optipod_duplicate_controller_total is $(dup_total) after converging, want 1"
echo "converged to cpu $cpu, memory $mem, written again $gap s after the detection (period ${PERIOD} s)"

e2e_stop_controller "$pid" "$log"
e2e_no_errors "$log"
kubectl delete optimizationpolicy -n "$E2E_NS" web --ignore-not-found >/dev/null
