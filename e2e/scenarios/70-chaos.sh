#!/usr/bin/env bash
# Chaos on a real control plane: during churn the API server is restarted five times, etcd is
# stopped and started once, and Prometheus is away for two minutes. The controller must never
# exit, log each outage once per backoff step (no line repeated more often than the 0.8 s
# doubling to 30 s backoff allows), report MetricsAvailable=False while Prometheus is away,
# and converge afterwards (every workload at its recommendation) with no write repeated and
# none within the reconcile interval of the previous (e2e_invariants).
#
# It stops and starts processes of the control plane, so it runs only when given one of its
# own: E2E_CHAOS_DIR=<dir> holding apiserver.sh (restarts the API server, writing
# apiserver.pid), apiserver.pid and etcd.pid, as a control plane started like the shared
# real-cluster-up.sh writes them; KUBECONFIG must point at that API server (checked against
# the running process's --secure-port). Otherwise: skipped.
#   E2E_CHAOS_PROM_SECONDS   how long Prometheus is away (default 120)
#   E2E_CHAOS_DOWN_SECONDS   how long each API server or etcd outage lasts (default 5, etcd 15)
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${E2E_CHAOS_DIR:-}
if [ -z "$dir" ]; then
  echo "chaos: SKIPPED: set E2E_CHAOS_DIR to a control plane of its own (apiserver.sh, apiserver.pid, etcd.pid): this scenario restarts it"
  exit 77
fi
for f in apiserver.sh apiserver.pid etcd.pid; do
  [ -e "$dir/$f" ] || { echo "chaos: SKIPPED: no $dir/$f"; exit 77; }
done
. "$here/lib.sh"
e2e_need_prometheus
command -v python3 >/dev/null || e2e_fail "needs python3"

PROM_DOWN=${E2E_CHAOS_PROM_SECONDS:-120}
DOWN=${E2E_CHAOS_DOWN_SECONDS:-5}
N=12 INTERVAL=10

# The API server of KUBECONFIG must be the one this directory runs: nothing else is touched.
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
kport=$(sed -E 's#^https?://[^:/]+:([0-9]+).*#\1#' <<<"$server")
# comm PID: the process's executable name ("" when it is gone). A stale pid file must never
# make this scenario stop anything but that control plane's own kube-apiserver and etcd.
comm() { cat "/proc/$1/comm" 2>/dev/null || true; }
apid=$(cat "$dir/apiserver.pid")
[ "$(comm "$apid")" = kube-apiserver ] || e2e_fail "$dir/apiserver.pid ($apid) is not a running kube-apiserver"
epid=$(cat "$dir/etcd.pid")
[ "$(comm "$epid")" = etcd ] || e2e_fail "$dir/etcd.pid ($epid) is not a running etcd"
eport=$(tr '\0' '\n' <"/proc/$epid/cmdline" | sed -n 's#^--listen-client-urls=*##p' | sed -E 's#.*:([0-9]+).*#\1#')
[ -z "$eport" ] && eport=$(tr '\0' ' ' <"/proc/$epid/cmdline" | sed -nE 's#.*--listen-client-urls[= ][^ ]*:([0-9]+).*#\1#p')
tr '\0' '\n' <"/proc/$apid/cmdline" | grep -q "^--etcd-servers=.*:${eport:-none}\b" ||
  e2e_fail "the etcd of $dir/etcd.pid (port ${eport:-?}) is not the one its API server uses"
aport=$(tr '\0' '\n' <"/proc/$apid/cmdline" | sed -n 's/^--secure-port=//p')
[ -n "$kport" ] && [ "$kport" = "${aport:-6443}" ] ||
  e2e_fail "KUBECONFIG's API server ($server) is not the one of $dir (--secure-port=${aport:-6443}): refusing to restart it"
echo "chaos: control plane $dir, API server $server (pid $apid), etcd pid $(cat "$dir/etcd.pid")"

now() { date -u +%s.%N; }
ready() { kubectl get --raw /readyz --request-timeout=2s >/dev/null 2>&1; }
wait_ready() { # SECONDS
  for _ in $(seq $(($1 * 2))); do
    ready && return 0
    sleep 0.5
  done
  e2e_fail "the API server did not become ready in $1 s"
}
alive() { kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; e2e_fail "optipod exited during the chaos"; }; }
stop_pid() { # PID: SIGTERM and wait up to 30 s
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
}
outages=()
outage() { outages+=("$1 $2 $3"); } # NAME START END

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
    metadata: {labels: {app: app-$d, chaos: "yes"}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 2Gi}}
EOF
done >"$E2E_TMP/workloads.yaml"
kubectl create -f "$E2E_TMP/workloads.yaml" >/dev/null
pods=""
for _ in $(seq 600); do
  pods=$(kubectl -n "$E2E_NS" get pods -l chaos=yes -o jsonpath='{.items[*].metadata.name}')
  [ "$(wc -w <<<"$pods")" -ge "$N" ] && break
  sleep 0.2
done
[ "$(wc -w <<<"$pods")" -ge "$N" ] || e2e_fail "$(wc -w <<<"$pods") of $N pods created (is kube-controller-manager running?)"
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"
prom_pid=${E2E_PIDS[-1]}
prom_port=${E2E_PROM_URL##*:}
e2e_snapshot

kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: chaos, namespace: $E2E_NS}
spec:
  mode: Auto
  selector: {workloadSelector: {matchLabels: {optipod.io/optimize: "true"}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  reconcileInterval: ${INTERVAL}s
EOF

mport=$(e2e_free_ports 1)
log="$E2E_TMP/optipod.log"
"$OPTIPOD_BIN" -v 2 --namespace "$E2E_NS" --leader-election-namespace "$E2E_NS" \
  --prometheus-url "$E2E_PROM_URL" \
  --health-probe-bind-address 0 --metrics-bind-address "127.0.0.1:$mport" >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

# Churn until the end: the Deployments' labels and replicas change (watch events, ReplicaSet
# and pod churn by kube-controller-manager), the policy is annotated. Failures during the
# outages are expected and ignored.
(
  i=0
  while :; do
    d=$(printf '%02d' $((i % N)))
    case $((i % 3)) in
      0) kubectl -n "$E2E_NS" label deployment "app-$d" --overwrite churn="$i" --request-timeout=3s ;;
      1) kubectl -n "$E2E_NS" scale deployment "app-$d" --replicas=$((1 + (i / N) % 2)) --request-timeout=3s ;;
      2) kubectl -n "$E2E_NS" annotate optimizationpolicy chaos --overwrite churn="$i" --request-timeout=3s ;;
    esac
    i=$((i + 1))
    sleep 1
  done
) >/dev/null 2>&1 &
churn=$!
E2E_PIDS+=("$churn")

e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/app-[0-9]+: applied: applied" 90
echo "chaos: optipod writes; the chaos starts"

# ---- the API server, restarted five times ----------------------------------------------------
for r in 1 2 3 4 5; do
  t0=$(now)
  apid=$(cat "$dir/apiserver.pid")
  [ "$(comm "$apid")" = kube-apiserver ] || e2e_fail "$dir/apiserver.pid ($apid) is not a running kube-apiserver"
  stop_pid "$apid"
  sleep "$DOWN"
  (cd "$dir" && ./apiserver.sh)
  wait_ready 90
  t1=$(now)
  outage "apiserver-$r" "$t0" "$t1"
  alive
  printf 'chaos: API server restart %d: down %.1f s\n' "$r" "$(python3 -c "print($t1 - $t0)")"
  sleep 10
done

# ---- etcd, stopped and started once (its own command line, in its own directory) ------------
epid=$(cat "$dir/etcd.pid")
[ "$(comm "$epid")" = etcd ] || e2e_fail "$dir/etcd.pid ($epid) is not a running etcd"
ecwd=$(readlink "/proc/$epid/cwd")
mapfile -d '' ecmd <"/proc/$epid/cmdline"
t0=$(now)
stop_pid "$epid"
sleep $((DOWN * 3))
# the new etcd writes its own pid (setsid may fork)
(cd "$ecwd" || exit 1
  setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$dir/etcd.pid" "${ecmd[@]}" >>etcd.log 2>&1 &)
sleep 1
[ "$(comm "$(cat "$dir/etcd.pid")")" = etcd ] || e2e_fail "etcd did not start again (see $ecwd/etcd.log)"
wait_ready 90
t1=$(now)
outage etcd "$t0" "$t1"
alive
printf 'chaos: etcd stopped and started: API not ready for %.1f s\n' "$(python3 -c "print($t1 - $t0)")"
sleep 10

# ---- Prometheus away -------------------------------------------------------------------------
metrics_available() { # the policy's MetricsAvailable condition status
  kubectl -n "$E2E_NS" get optimizationpolicy chaos \
    -o jsonpath='{.status.conditions[?(@.type=="MetricsAvailable")].status}' 2>/dev/null
}
t0=$(now)
stop_pid "$prom_pid"
seen_false=""
for _ in $(seq "$PROM_DOWN"); do
  [ "$(metrics_available)" = "False" ] && [ -z "$seen_false" ] &&
    seen_false=$(python3 -c "print(round($(now) - $t0, 1))")
  alive
  sleep 1
done
"$PROMETHEUS" --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=30d --log.level=warn \
  >>"$E2E_TMP/prometheus.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 300); do
  curl -fs "$E2E_PROM_URL/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
t1=$(now)
outage prometheus "$t0" "$t1"
[ -n "$seen_false" ] || e2e_fail "MetricsAvailable never turned False in the ${PROM_DOWN} s Prometheus was away"
echo "chaos: Prometheus away ${PROM_DOWN} s: MetricsAvailable=False after ${seen_false} s"
back_true=""
for _ in $(seq 90); do
  [ "$(metrics_available)" = "True" ] && { back_true=1; break; }
  sleep 1
done
[ -n "$back_true" ] || e2e_fail "MetricsAvailable did not return to True within 90 s of Prometheus's return"

# ---- converged -------------------------------------------------------------------------------
kill "$churn" 2>/dev/null || true
at_rec() { # Deployments at the recommendation (usage 0.2 cores and 200 MiB: 240m/240Mi, or
  # 250m/256Mi, the step before it, which is within the change threshold of it)
  kubectl -n "$E2E_NS" get deployments -l optipod.io/optimize=true -o json | python3 -c '
import json, sys
print(sum(1 for d in json.load(sys.stdin)["items"]
          if d["spec"]["template"]["spec"]["containers"][0]["resources"].get("requests", {})
          in ({"cpu": "240m", "memory": "240Mi"}, {"cpu": "250m", "memory": "256Mi"})))'
}
conv=0
for _ in $(seq 120); do
  conv=$(at_rec)
  [ "$conv" -eq "$N" ] && break
  alive
  sleep 1
done
[ "$conv" -eq "$N" ] || e2e_fail "$conv of $N Deployments converged to their recommendation after the chaos"
# and stays there: no workload write over two reconcile intervals
w0=$(grep -cE "reconcile Deployment/$E2E_NS/app-[0-9]+: applied: applied" "$log" || true)
sleep $((2 * INTERVAL + 2))
w1=$(grep -cE "reconcile Deployment/$E2E_NS/app-[0-9]+: applied: applied" "$log" || true)
[ "$w1" -eq "$w0" ] || e2e_fail "$((w1 - w0)) workload writes after convergence"
echo "chaos: converged: $N of $N Deployments at their recommendation, no write in $((2 * INTERVAL + 2)) s after"

# ---- each outage logged once per backoff step -----------------------------------------------
# Warnings and errors within each outage (and 5 s after), grouped by their text with numbers
# taken out: none may repeat more often than the backoff of what retries allows over the
# outage: a reconcile's (the work queue's, per workload: 5 ms doubling to 1000 s), anything
# else's (the watches', per informer, and the lease's: 0.8 s doubling to 30 s), +1.
printf '%s\n' "${outages[@]}" >"$E2E_TMP/outages.txt"
python3 - "$log" "$E2E_TMP/outages.txt" "$N" <<'PY' || e2e_fail "an outage was logged more often than its backoff allows (above)"
import re, sys, datetime
log, outf, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = []
for l in open(log, errors="replace"):
    m = re.match(r"^([WE])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+) ", l)
    if not m:
        continue
    t = (datetime.datetime(datetime.datetime.utcnow().year, int(m.group(2)), int(m.group(3)),
                           int(m.group(4)), int(m.group(5)), tzinfo=datetime.timezone.utc).timestamp()
         + float(m.group(6)))
    lines.append((t, l[m.end():]))

def steps(d, first, cap):  # attempts a backoff doubling from first to cap makes in d s
    n, t, delay = 1, 0.0, first
    while t + delay <= d:
        t += delay
        n += 1
        delay = min(delay * 2, cap)
    return n

worst = ("", 0, 0)
bad = 0
for row in open(outf):
    name, t0, t1 = row.split()
    t0, t1 = float(t0), float(t1) + 5
    groups = {}
    for t, text in lines:
        if t0 <= t <= t1:
            key = re.sub(r"app-\d+", "app-N", text)
            key = re.sub(r"\d+(\.\d+)?", "#", key)
            groups[key] = groups.get(key, 0) + 1
    bound_w = steps(t1 - t0, 0.8, 30.0) + 1
    bound_q = steps(t1 - t0, 0.005, 1000.0) + 1
    total = sum(groups.values())
    for key, c in groups.items():
        per = (bound_q if "reconcile " in key else bound_w) * (n if "app-N" in key else 1)
        if c > per:
            bad += 1
            print("%s: %d times (bound %d): %s" % (name, c, per, key.strip()[:200]), file=sys.stderr)
        if c / per > worst[1] / max(worst[2], 1):
            worst = (key.strip()[:80], c, per)
    print("chaos: %-12s %5.1f s: %3d warning/error lines, %d kinds; bound per kind %d (a "
          "reconcile's: %d per workload)" % (name, t1 - t0 - 5, total, len(groups), bound_w, bound_q))
print("chaos: the most repeated line: %d of at most %d: %s" % (worst[1], worst[2], worst[0]))
sys.exit(1 if bad else 0)
PY

alive
restarts=$(grep -c "leader election: lease" "$log" || true)
writes=$(e2e_metric optipod_api_writes_total "$mport")
e2e_invariants "$log" "$INTERVAL"
e2e_stop_controller "$pid" "$log"
echo "chaos: summary: 5 API server restarts, etcd stopped once, Prometheus away ${PROM_DOWN} s; optipod never exited, $N of $N workloads converged, $writes API writes; exit 0 on SIGTERM ($restarts lease start)"
