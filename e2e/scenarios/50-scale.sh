#!/usr/bin/env bash
# 200 Deployments in 20 namespaces, a real API server and a real Prometheus: the benchmarks'
# figures, checked on the real thing.
#  1. 20 namespaces with 10 Deployments and one Auto policy each (reconcileInterval 10s); every
#     pod uses 0.2 cores and 200 MiB, for which the engine recommends 240m and 240Mi; the even
#     Deployments request 400m and 400Mi (changed to the recommendation in one step, inside
#     the -50% cap on a decrease), the odd ones request 240m and 240Mi (within the change
#     threshold: unchanged);
#  2. the first pass reconciles all 200: one write per changed Deployment and none for an
#     unchanged one (bench_steady, docs/gitops.md), counted by the controller
#     (optipod_api_writes_total less optipod_status_writes_total, less the recommendation
#     records' writes (optipod_record_writes_total: one per Deployment, two per changed one),
#     less the writes the server
#     refused with 409 because the Deployment controller had just updated the object, which
#     the controller logs and retries) and seen on the server (the changed ones hold the
#     recommendation at generation 2 with an optipod entry in managedFields, the unchanged
#     ones are untouched at generation 1);
#  3. the steady state: over three more reconcile intervals, zero writes;
#  4. Prometheus's own query log: every namespace queried, at most 2 queries per namespace per
#     reconcile cycle (bench_prom_queries' figure).
# The pods may stay Pending (no kubelet needed): usage is keyed by pod name.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3 (a free port, JSON)"

NNS=20 PER_NS=10 INTERVAL=10
RUN="$E2E_NS"
nss=()
for i in $(seq 0 $((NNS - 1))); do nss+=("$(printf '%s-%02d' "$E2E_NS" "$i")"); done
scale_cleanup() {
  e2e_cleanup
  kubectl delete namespace "${nss[@]}" --wait=false --ignore-not-found >/dev/null 2>&1 || true
}
trap scale_cleanup EXIT

e2e_install_crd

# ---- 20 namespaces, 200 Deployments -------------------------------------------------------------
{
  for ns in "${nss[@]}"; do
    printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$ns"
    for d in $(seq 0 $((PER_NS - 1))); do
      if [ $((d % 2)) -eq 0 ]; then cpu=400m mem=400Mi; else cpu=240m mem=240Mi; fi
      cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-$d, namespace: $ns, labels: {optipod.io/optimize: "true"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web-$d}}
  template:
    metadata: {labels: {app: web-$d, optipod-e2e-run: $RUN}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "$cpu", memory: $mem}}
EOF
    done
  done
} >"$E2E_TMP/workloads.yaml"
kubectl create -f "$E2E_TMP/workloads.yaml" >/dev/null || e2e_fail "creating the namespaces and Deployments failed"
total=$((NNS * PER_NS))

pods=""
for _ in $(seq 600); do
  pods=$(kubectl get pods -A -l "optipod-e2e-run=$RUN" \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}')
  [ "$(wc -w <<<"$pods")" -ge "$total" ] && break
  sleep 0.5
done
[ "$(wc -w <<<"$pods")" -ge "$total" ] ||
  e2e_fail "$(wc -w <<<"$pods") of $total pods created in 5 min (is kube-controller-manager running?)"
echo "$total Deployments in $NNS namespaces, their $total pods created"

# ---- usage: every pod uses 0.2 cores and 200 MiB ----------------------------------------------
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

for ns in "${nss[@]}"; do
  cat <<EOF
---
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: right-size, namespace: $ns}
spec:
  mode: Auto
  selector: {workloadSelector: {matchLabels: {optipod.io/optimize: "true"}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: ${INTERVAL}s
EOF
done >"$E2E_TMP/policies.yaml"
kubectl apply --server-side --field-manager=optipod-e2e -f "$E2E_TMP/policies.yaml" >/dev/null

# ---- a controller per namespace ----------------------------------------------------------------
# One per namespace (--namespace), not one for the whole cluster: a test cluster is often
# shared, and a cluster-wide controller would reconcile other people's policies too (seen on
# the shared v1.24 control plane: it published annotations on another run's workloads). The
# figures are per namespace and per workload, so they read the same; the counters are summed.
read -r -a mports <<<"$(e2e_free_ports "$NNS")"
started=$(date +%s)
for i in "${!nss[@]}"; do
  "$OPTIPOD_BIN" -v 2 --namespace "${nss[$i]}" --leader-election-namespace "${nss[$i]}" \
    --prometheus-url "$E2E_PROM_URL" \
    --health-probe-bind-address 0 --metrics-bind-address "127.0.0.1:${mports[$i]}" \
    >"$E2E_TMP/optipod-$i.log" 2>&1 &
  E2E_PIDS+=("$!")
done
logs() { cat "$E2E_TMP"/optipod-*.log; }

metric() { e2e_metric "$1" "${mports[@]}"; }
# "reconcile Deployment/NS/web-N: applied|unchanged" for this run's namespaces, first outcome each;
# a write the server refused with 409 (the Deployment controller had just written the object) is
# retried, not an outcome: it is counted below
outcomes() {
  { logs | grep -vE ": error: write: the workload changed meanwhile" | grep -oE "reconcile Deployment/$E2E_NS-[0-9]+/web-[0-9]+: (applied|unchanged|skipped|error|conflict)" || true; } |
    awk '{ k = $2; sub(/:$/, "", k); if (!(k in s)) { s[k] = $3; n[$3]++ } } END { for (o in n) printf "%s=%d ", o, n[o] }'
}
count_of() { # outcome summary → its count (0 when absent)
  local v
  v=$(grep -oE "$1=[0-9]+" <<<"$2" | cut -d= -f2 || true)
  echo "${v:-0}"
}

for _ in $(seq 1200); do
  o=$(outcomes)
  [ $(($(count_of applied "$o") + $(count_of unchanged "$o"))) -ge "$total" ] && break
  sleep 0.1
done
o=$(outcomes)
[ "$(count_of applied "$o")" = $((total / 2)) ] && [ "$(count_of unchanged "$o")" = $((total / 2)) ] ||
  { logs | grep reconcile | tail -n 30 >&2; e2e_fail "first outcomes: $o; want applied=$((total / 2)) unchanged=$((total / 2))"; }

# The first pass is over when the write counters stand still for 5 s.
prev="" same=0
for _ in $(seq 120); do
  cur="$(metric optipod_api_writes_total)/$(metric optipod_status_writes_total)/$(metric optipod_record_writes_total)"
  if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
  prev=$cur
  [ "$same" -ge 10 ] && break
  sleep 0.5
done
w1=$(metric optipod_api_writes_total) s1=$(metric optipod_status_writes_total)
r1=$(metric optipod_record_writes_total)
retried=$(logs | grep -cE "reconcile Deployment/$E2E_NS-[0-9]+/web-[0-9]+: error: write: the workload changed meanwhile" || true)
workload_writes=$((w1 - s1 - r1 - retried))
echo "first pass: ${o% }; writes $w1: $s1 policy status, $r1 recommendation records, $retried refused with 409 and retried, $workload_writes to workloads"
# one record per Deployment, and a second one for a changed one (its rule goes from "apply" to
# "unchanged: within-threshold" once the write is seen); a write refused with 409 is retried, and
# its record may be written before and after
[ "$r1" -le $((total + total / 2 + retried)) ] ||
  e2e_fail "$r1 record writes for $total workloads in the first pass; want $((total + total / 2))"
[ "$workload_writes" -eq $((total / 2)) ] ||
  e2e_fail "$workload_writes workload writes in the first pass; want one per changed Deployment: $((total / 2))"
[ "$s1" -le $((2 * NNS)) ] || e2e_fail "$s1 status writes for $NNS policies in the first pass"

# On the server: the changed ones hold the recommendation, written once; the others untouched.
kubectl get deployments -A -l optipod.io/optimize=true --show-managed-fields -o json |
  python3 -c '
import json, sys
prefix, want = sys.argv[1] + "-", int(sys.argv[2])
bad, changed, same = [], 0, 0
for d in json.load(sys.stdin)["items"]:
    m = d["metadata"]
    if not m["namespace"].startswith(prefix):
        continue
    req = d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    ours = [e for e in m.get("managedFields", []) if e["manager"] == "optipod"]
    key = m["namespace"] + "/" + m["name"]
    if int(m["name"].split("-")[1]) % 2 == 0:
        changed += 1
        if (req.get("cpu"), req.get("memory")) != ("240m", "240Mi") or m["generation"] != 2 or not ours:
            bad.append("%s: requests %s, generation %s, optipod entries %d (want 240m/240Mi, 2, >0)" % (key, req, m["generation"], len(ours)))
    else:
        same += 1
        if (req.get("cpu"), req.get("memory")) != ("240m", "240Mi") or m["generation"] != 1 or ours:
            bad.append("%s: requests %s, generation %s, optipod entries %d (want untouched)" % (key, req, m["generation"], len(ours)))
if changed + same != want:
    bad.append("%d Deployments found, want %d" % (changed + same, want))
print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)' "$E2E_NS" "$total" >"$E2E_TMP/check.out" ||
  { cat "$E2E_TMP/check.out" >&2; e2e_fail "the Deployments on the server are not as the first pass should leave them"; }
echo "on the server: $((total / 2)) Deployments at the recommendation (generation 2), $((total / 2)) untouched"

# ---- steady state: three more reconcile intervals, nothing written ------------------------------------
sleep $((3 * INTERVAL + 2))
w2=$(metric optipod_api_writes_total) s2=$(metric optipod_status_writes_total)
r2=$(metric optipod_record_writes_total)
[ "$w2" -eq "$w1" ] ||
  e2e_fail "steady state: $((w2 - w1)) writes ($((s2 - s1)) policy status, $((r2 - r1)) records) in $((3 * INTERVAL + 2)) s; want 0"
echo "steady state: 0 writes in $((3 * INTERVAL + 2)) s"

# ---- Prometheus queries per namespace per cycle ---------------------------------------------------------
elapsed=$(($(date +%s) - started))
cycles=$(((elapsed + INTERVAL - 1) / INTERVAL))
python3 -c '
import json, sys
log, prefix, nns, cycles = sys.argv[1], sys.argv[2] + "-", int(sys.argv[3]), int(sys.argv[4])
per = {}
for line in open(log):
    q = json.loads(line).get("params", {}).get("query", "")
    for ns in set(p.split("\"")[0] for p in q.split("namespace=\"")[1:]):
        if ns.startswith(prefix):
            per[ns] = per.get(ns, 0) + 1
top = max(per.values()) if per else 0
print("Prometheus: %d queries for %d namespaces in %d cycles; at most %d for one namespace (limit %d)" %
      (sum(per.values()), len(per), cycles, top, 2 * cycles))
sys.exit(0 if len(per) == nns and top <= 2 * cycles else 1)' "$E2E_PROM_QUERY_LOG" "$E2E_NS" "$NNS" "$cycles" ||
  e2e_fail "Prometheus queries beyond 2 per namespace per cycle, or a namespace never queried"

e2e_no_errors "$E2E_TMP"/optipod-*.log
