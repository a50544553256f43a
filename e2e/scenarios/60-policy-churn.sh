#!/usr/bin/env bash
# A policy edited, then deleted, while the controller is applying its workloads, on a real API
# server (what the fake cannot be trusted with: the order in which the real server delivers the
# policy's and the workloads' events while writes are in flight):
#  1. 40 Deployments request cpu 1 / memory 1Gi and use far less (the recommendation is
#     500m / 512Mi); an Auto policy selects them all;
#  2. at the first write the policy is switched to Recommend: what was written stays written,
#     nothing more is written to any pod template once the controller has seen the edit, and
#     every workload gets the recommendation as optipod.io/ annotations instead;
#  3. switched back to Auto, and deleted at the first write that follows: the policy is gone at
#     once (nothing holds it), no workload keeps an optipod.io/ annotation, no template is
#     half-written (each holds either its own requests or the whole recommendation), and over
#     three reconcile intervals after that nothing is written at all;
#  4. no error is logged and the controller exits 0 on SIGTERM.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 (a free port, JSON)"

N=40 INTERVAL=10
e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null
for d in $(seq -w 0 $((N - 1))); do
  cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-$d, namespace: $E2E_NS, labels: {optipod.io/optimize: "true"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-$d}}
  template:
    metadata: {labels: {app: app-$d, churn: "yes"}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}}
EOF
done >"$E2E_TMP/workloads.yaml"
kubectl create -f "$E2E_TMP/workloads.yaml" >/dev/null
pods=""
for _ in $(seq 600); do
  pods=$(kubectl -n "$E2E_NS" get pods -l churn=yes -o jsonpath='{.items[*].metadata.name}')
  [ "$(wc -w <<<"$pods")" -ge "$N" ] && break
  sleep 0.2
done
[ "$(wc -w <<<"$pods")" -ge "$N" ] || e2e_fail "$(wc -w <<<"$pods") of $N pods created (is kube-controller-manager running?)"
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

policy() { # mode
  kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: churn, namespace: $E2E_NS}
spec:
  mode: $1
  selector: {workloadSelector: {matchLabels: {optipod.io/optimize: "true"}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: ${INTERVAL}s
EOF
}

mport=$(e2e_free_ports 1)
metric() { e2e_metric "$1" "$mport"; }
# A pod template written ("applied: applied app/requests.cpu=500m;..."), not annotations published.
template_re="reconcile Deployment/$E2E_NS/app-[0-9]+: applied: applied [^ ]+/[^ ]+="
# writes to workloads so far (policy status writes aside)
workload_writes() { echo $(($(metric optipod_api_writes_total) - $(metric optipod_status_writes_total))); }
wait_quiet() { # the write counters stand still for 5 s
  local prev="" cur same=0
  for _ in $(seq 240); do
    cur="$(metric optipod_api_writes_total)"
    if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
    prev=$cur
    [ "$same" -ge 10 ] && return 0
    sleep 0.5
  done
  e2e_fail "the controller kept writing for 2 min"
}
# Every template holds its own requests or a whole recommendation (usage 0.2 cores and 200 MiB:
# 240m/240Mi in the end, reached in steps of at most -50%: 500m/512Mi, then 250m/256Mi), never
# one value of one and one of another; prints "written kept".
templates() {
  kubectl -n "$E2E_NS" get deployments -l optipod.io/optimize=true -o json | python3 -c '
import json, sys
w = k = 0
for d in json.load(sys.stdin)["items"]:
    r = d["spec"]["template"]["spec"]["containers"][0]["resources"].get("requests", {})
    v = (r.get("cpu"), r.get("memory"))
    if v in (("500m", "512Mi"), ("250m", "256Mi"), ("240m", "240Mi")): w += 1
    elif v == ("1", "1Gi"): k += 1
    else: sys.exit("%s: requests %s: neither its own nor a recommendation" % (d["metadata"]["name"], r))
print(w, k)'
}
annotated() { # Deployments carrying any optipod.io/ annotation
  kubectl -n "$E2E_NS" get deployments -o json | python3 -c '
import json, sys
print(sum(1 for d in json.load(sys.stdin)["items"]
          if any(a.startswith("optipod.io/") for a in d["metadata"].get("annotations", {}))))'
}

e2e_snapshot
policy Auto
log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 3 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" \
  --health-probe-bind-address 0 --metrics-bind-address "127.0.0.1:$mport" >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

# ---- 2. switched to Recommend at the first write ------------------------------------------------
e2e_wait_log "$log" "$template_re" 90
policy Recommend
e2e_wait_log "$log" "optimizationpolicies $E2E_NS/churn updated" 30
seen=$(wc -l <"$log")
wait_quiet
t=$(templates) || e2e_fail "a half-written template"
read -r written kept <<<"$t"
echo "edited while applying: $written templates written before the edit took, $kept kept"
[ "$((written + kept))" -eq "$N" ] || e2e_fail "$written + $kept templates, want $N"
[ "$kept" -gt 0 ] || echo "note: every template was written before the edit reached the controller"
# After the controller saw the edit, a template write may only finish a reconcile that was
# already in flight: at most one per worker (8, the controller's default), none started later.
late=$(tail -n +"$((seen + 1))" "$log" | grep -cE "$template_re" || true)
echo "template writes finished after the controller saw the edit: $late (in flight then; at most 8)"
[ "$late" -le 8 ] || e2e_fail "$late template writes after the controller saw the switch to Recommend"
for _ in $(seq 300); do
  [ "$(annotated)" -eq "$N" ] && break
  sleep 0.2
done
[ "$(annotated)" -eq "$N" ] || e2e_fail "$(annotated) of $N Deployments carry the recommendation as annotations"

# ---- 3. back to Auto, deleted at the first write ------------------------------------------------
mark=$(wc -l <"$log")
policy Auto
for _ in $(seq 600); do
  tail -n +"$((mark + 1))" "$log" | grep -qE "$template_re" && break
  sleep 0.05
done
kubectl -n "$E2E_NS" delete optimizationpolicy churn --wait=true --timeout=30s >/dev/null ||
  e2e_fail "the policy could not be deleted in 30 s"
e2e_wait_log "$log" "optimizationpolicies $E2E_NS/churn deleted" 30
seen=$(grep -n "optimizationpolicies $E2E_NS/churn deleted" "$log" | head -n 1 | cut -d: -f1)
wait_quiet
late=$(tail -n +"$((seen + 1))" "$log" | grep -cE "$template_re" || true)
echo "template writes finished after the controller saw the deletion: $late (in flight then; at most 8)"
[ "$late" -le 8 ] || e2e_fail "$late template writes after the controller saw the policy deleted"
for _ in $(seq 300); do
  [ "$(annotated)" -eq 0 ] && break
  sleep 0.2
done
[ "$(annotated)" -eq 0 ] || e2e_fail "$(annotated) Deployments keep optipod.io/ annotations after the policy was deleted"
t=$(templates) || e2e_fail "a half-written template"
read -r written kept <<<"$t"
echo "deleted while applying: $written templates at the recommendation, $kept at their own requests, no annotation left"
[ "$((written + kept))" -eq "$N" ] || e2e_fail "$written + $kept templates, want $N"

# ---- nothing more is written --------------------------------------------------------------------------
w=$(workload_writes) a=$(metric optipod_api_writes_total)
sleep $((3 * INTERVAL + 2))
[ "$(metric optipod_api_writes_total)" -eq "$a" ] ||
  e2e_fail "$(($(metric optipod_api_writes_total) - a)) writes in $((3 * INTERVAL + 2)) s after the policy was deleted"
echo "after the deletion: 0 writes in $((3 * INTERVAL + 2)) s ($w workload writes in all)"

e2e_invariants "$log" "$INTERVAL"
e2e_stop_controller "$pid" "$log"
e2e_no_errors "$log"
