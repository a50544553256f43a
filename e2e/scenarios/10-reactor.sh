#!/usr/bin/env bash
# The client reactor against a real API server: the controller lists and
# watches a namespace, sees a Deployment added, scaled and deleted, reports
# ready, and exits 0 on SIGTERM with no handle left open.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

kubectl create namespace "$E2E_NS" >/dev/null
kubectl -n "$E2E_NS" create deployment web --image=registry.k8s.io/pause:3.9 --replicas=1 >/dev/null

log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 3 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --health-probe-bind-address 127.0.0.1:0 --metrics-bind-address 0 >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

e2e_wait_log "$log" "deployments $E2E_NS/web added"
e2e_wait_log "$log" "apps/v1 replicasets in $E2E_NS: [0-9]+ objects listed"
kubectl -n "$E2E_NS" scale deployment web --replicas=2 >/dev/null
e2e_wait_log "$log" "deployments $E2E_NS/web updated"
kubectl -n "$E2E_NS" delete deployment web --wait=true >/dev/null
e2e_wait_log "$log" "deployments $E2E_NS/web deleted"

e2e_stop_controller "$pid" "$log"
e2e_no_errors "$log"
