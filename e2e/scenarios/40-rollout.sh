#!/usr/bin/env bash
# rolloutStrategy immediate + allowRecreate with the webhook strategy, behind a
# PodDisruptionBudget, against a real API server:
#  1. install the CRD; Git (argocd-controller) applies a two-replica Deployment
#     with small requests; it must become available (the rollout gate waits
#     for a fully available workload): on a cluster without kubelets the node
#     simulator (e2e_nodesim) binds its pods and reports them Running and Ready;
#  2. a PodDisruptionBudget minAvailable 2 selects its pods: disruptionsAllowed 0;
#  3. a real Prometheus on loopback, backfilled with usage for those pods
#     (far above their requests, so the recommendation differs);
#  4. an Auto / webhook / immediate / allowRecreate policy: optipod publishes the
#     annotations, then defers the restart (Event RolloutDeferred naming the
#     PDB): no template change, no new generation;
#  5. the PDB is relaxed (minAvailable 1): optipod restarts through the
#     workload: spec.template.metadata.annotations["optipod.io/restartedAt"]
#     appears, the generation moves, Event RolloutTriggered, and the
#     annotation is owned by field manager optipod as an Update; the requests
#     in the template are untouched;
#  6. the policy's status.rollout records that rollout; a second controller
#     started after the first is stopped takes it up from there and lets it go
#     once the Deployment reports it complete.
# No MutatingWebhookConfiguration is installed: what the new pods receive is
# 30-webhook's subject, not this one's.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 (a free port, managedFields)"

e2e_install_crd
kubectl create namespace "$E2E_NS" >/dev/null
e2e_nodesim "$E2E_NS"

kubectl apply --server-side --field-manager=argocd-controller -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $E2E_NS, labels: {app: web}}
spec:
  replicas: 2
  minReadySeconds: 30
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: 10m, memory: 16Mi}}
EOF
# Small requests, so the pods fit any node and become available; the usage
# below is far above them, so the recommendation differs from what they run.
# minReadySeconds keeps optipod's rollout running for a minute or more, long
# enough to stop the controller mid-rollout and start another (step 6).
kubectl -n "$E2E_NS" rollout status deployment/web --timeout=180s >/dev/null 2>&1 ||
  e2e_fail "deployment web never became available (no image pull? see: kubectl -n $E2E_NS describe pods)"
pods=$(kubectl -n "$E2E_NS" get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
[ "$(echo "$pods" | wc -w)" -eq 2 ] || e2e_fail "expected 2 pods, got: $pods"

kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web-pdb, namespace: $E2E_NS}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
EOF
pdb_allowed() { kubectl -n "$E2E_NS" get pdb web-pdb -o jsonpath='{.status.disruptionsAllowed}'; }
pdb_current() {
  [ "$(kubectl -n "$E2E_NS" get pdb web-pdb -o jsonpath='{.status.observedGeneration}')" = \
    "$(kubectl -n "$E2E_NS" get pdb web-pdb -o jsonpath='{.metadata.generation}')" ]
}
for _ in $(seq 300); do
  pdb_current && [ "$(pdb_allowed)" = 0 ] && break
  sleep 0.1
done
[ "$(pdb_allowed)" = 0 ] || e2e_fail "PDB web-pdb: disruptionsAllowed '$(pdb_allowed)', want 0"

# ---- usage: 3 h of samples for the app container (0.2 cores, 200 MiB) ----------------------------
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

# ---- the policy and the controller ----------------------------------------------------------------
kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: web, namespace: $E2E_NS}
spec:
  mode: Auto
  selector: {workloadSelector: {matchLabels: {app: web}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: 10s
  updateStrategy: {strategy: webhook, rolloutStrategy: immediate, allowRecreate: true}
EOF

restarted_at() {
  kubectl -n "$E2E_NS" get deployment web \
    -o jsonpath='{.spec.template.metadata.annotations.optipod\.io/restartedAt}'
}
event_note() { # reason
  kubectl -n "$E2E_NS" get events.events.k8s.io --field-selector "reason=$1" \
    -o jsonpath='{range .items[*]}{.note}{"\n"}{end}' 2>/dev/null
}

log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" --health-probe-bind-address 0 --metrics-bind-address 0 >"$log" 2>&1 &
ctl_pid=$!
E2E_PIDS+=("$ctl_pid")

# ---- the PDB allows nothing: deferred ---------------------------------------------------------------
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/web: skipped: rollout deferred: PodDisruptionBudget $E2E_NS/web-pdb" 90
for _ in $(seq 100); do
  grep -q "web-pdb" <<<"$(event_note RolloutDeferred)" && break
  sleep 0.1
done
grep -q "PodDisruptionBudget $E2E_NS/web-pdb allows no disruption" <<<"$(event_note RolloutDeferred)" ||
  e2e_fail "no RolloutDeferred Event naming the PDB: $(event_note RolloutDeferred)"
# Publishing the annotations moved the generation (a v1.24 Deployment's generation follows its
# annotations too); from here on, more than a reconcile interval, it must stand still.
gen0=$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}')
sleep 12
[ -z "$(restarted_at)" ] || e2e_fail "restarted although the PDB allows no disruption"
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}')" = "$gen0" ] ||
  e2e_fail "the Deployment changed while the rollout was deferred"

# ---- the PDB allows one: the restart goes through the workload ------------------------------------
kubectl -n "$E2E_NS" patch pdb web-pdb --type=merge -p '{"spec":{"minAvailable":1}}' >/dev/null
for _ in $(seq 600); do
  [ -n "$(restarted_at)" ] && break
  sleep 0.1
done
at=$(restarted_at)
[ -n "$at" ] || { tail -n 40 "$log" >&2; e2e_fail "no restart after the PDB allowed one"; }
echo "$at" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' ||
  e2e_fail "optipod.io/restartedAt '$at' is not an RFC 3339 UTC time"
gen1=$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.metadata.generation}')
[ "$gen1" -gt "$gen0" ] || e2e_fail "the generation did not move ($gen0 -> $gen1)"
for _ in $(seq 100); do
  [ -n "$(event_note RolloutTriggered)" ] && break
  sleep 0.1
done
grep -q "triggered a rollout through the workload" <<<"$(event_note RolloutTriggered)" ||
  e2e_fail "no RolloutTriggered Event: $(event_note RolloutTriggered)"
[ "$(kubectl -n "$E2E_NS" get deployment web -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}')" = "10m" ] ||
  e2e_fail "the restart changed the template's requests"
kubectl -n "$E2E_NS" get deployment web --show-managed-fields -o json | python3 -c '
import json, sys
entries = json.load(sys.stdin)["metadata"].get("managedFields", [])
ok = any(e["manager"] == "optipod" and e["operation"] == "Update" and
         "f:optipod.io/restartedAt" in json.dumps(e.get("fieldsV1", {})) for e in entries)
sys.exit(0 if ok else 1)' || e2e_fail "optipod.io/restartedAt is not owned by optipod as an Update"

# Publishing the annotations and the restart are two writes of the workload, causes seconds
# apart: the restart waited until --min-write-interval (30 s, the default) had passed.
grep -q "reconcile Deployment/$E2E_NS/web: skipped: the restart waits .* --min-write-interval" "$log" ||
  e2e_fail "the restart did not wait for --min-write-interval after the annotations"
gap=$(e2e_min_gap "$log" "reconcile Deployment/$E2E_NS/web: applied: (recommendation published|rolled out)" 30) || exit 1
echo "annotations published, then the restart $gap later (--min-write-interval 30 s)"

# ---- the rollout being followed is on record in the policy's status: a restarted controller ----------
# ---- takes it up instead of starting another, and lets it go once it completes ---------------------
recorded() { kubectl -n "$E2E_NS" get optimizationpolicy web -o jsonpath='{.status.rollout.name}/{.status.rollout.generation}'; }
for _ in $(seq 300); do
  [ "$(recorded)" = "web/$gen1" ] && break
  sleep 0.1
done
[ "$(recorded)" = "web/$gen1" ] || e2e_fail "status.rollout is '$(recorded)', want 'web/$gen1'"
kill -TERM "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
log2="$E2E_TMP/optipod2.log"
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" --health-probe-bind-address 0 --metrics-bind-address 0 >"$log2" 2>&1 &
E2E_PIDS+=("$!")
e2e_wait_log "$log2" "rollout: following Deployment/$E2E_NS/web \(generation $gen1, " 60
kubectl -n "$E2E_NS" rollout status deployment/web --timeout=180s >/dev/null ||
  e2e_fail "the rollout optipod triggered did not complete"
e2e_wait_log "$log2" "rollout: Deployment/$E2E_NS/web completed" 60
