# shellcheck shell=bash
# Shared helpers for e2e scenarios: a namespace of their own, cleaned up on
# exit, and waiting for a line in the controller's log. E2E_KEEP=1 keeps each
# scenario's files (the controller's log, the usage, Prometheus's query log).
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
E2E_NS="optipod-e2e-$(date +%s)-$RANDOM"
E2E_TMP=$(mktemp -d)
E2E_PIDS=()

# e2e_stop PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaped before it returns, so
# nothing still writes into $E2E_TMP when the cleanup removes it.
e2e_stop() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

e2e_cleanup() {
  for p in "${E2E_PIDS[@]+"${E2E_PIDS[@]}"}"; do e2e_stop "$p"; done
  kubectl delete namespace "$E2E_NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "e2e: kept the scenario's files (logs, usage, Prometheus query log) in $E2E_TMP" >&2
  else
    rm -rf "$E2E_TMP"
  fi
}
trap e2e_cleanup EXIT

e2e_fail() { echo "e2e: $*" >&2; exit 1; }

# e2e_free_ports [N] [ADDR]: N free TCP ports on ADDR (default 1 on 127.0.0.1), space-separated.
e2e_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind((sys.argv[2], 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "${1:-1}" "${2:-127.0.0.1}"
}

# e2e_metric NAME PORT...: the value of NAME in the /metrics of the controllers on these
# loopback ports, summed (0 before any answers).
e2e_metric() {
  local name=$1 p
  shift
  for p in "$@"; do
    curl -fs "http://127.0.0.1:$p/metrics" 2>/dev/null || true
  done | awk -v m="$name" '$1 == m { t += $2 } END { print t + 0 }'
}

# e2e_stop_controller PID LOG: SIGTERM; it must exit 0 and say "shutdown complete".
e2e_stop_controller() {
  local pid=$1 log=$2 rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || e2e_fail "optipod exited $rc after SIGTERM"
  grep -q "shutdown complete" "$log" || e2e_fail "no 'shutdown complete' in $log"
}

# e2e_no_errors LOG...: fail, showing them, when a log holds error lines.
e2e_no_errors() {
  local l
  for l in "$@"; do
    if grep -qE "^E" "$l"; then
      grep -E "^E" "$l" | head -n 20 >&2
      e2e_fail "errors were logged ($l)"
    fi
  done
}

# e2e_install_crd: optipod's CRDs (OptimizationPolicy, OptimizationRecommendation) for real, by
# server-side apply that takes every field it sets (--force-conflicts), so it works whoever
# installed them before (a client-side `kubectl apply`, Helm, another field manager) and an older
# version is brought up to date (a record the controller writes against an older CRD schema is
# refused: HTTP 500 "field not declared in schema"); then waits until the API serves them. The
# CRDs stay installed: deleting them would delete every policy and record of the cluster.
e2e_install_crd() {
  local out crd
  for crd in optimizationpolicies optimizationrecommendations; do
    out=$(kubectl apply --server-side --force-conflicts --field-manager=optipod-e2e \
      -f "$E2E_ROOT/crds/$crd.optipod.io.yaml" 2>&1) ||
      e2e_fail "installing the CRD $crd.optipod.io failed: $out"
    kubectl wait --for condition=established --timeout=30s "crd/$crd.optipod.io" >/dev/null ||
      e2e_fail "the CRD $crd.optipod.io did not become established"
  done
}

# e2e_wait_log FILE REGEX [SECONDS]
e2e_wait_log() {
  local file=$1 re=$2 secs=${3:-30}
  for _ in $(seq $((secs * 10))); do
    grep -qE "$re" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "--- log ($file) ---" >&2; tail -n 40 "$file" >&2
  e2e_fail "timed out after ${secs}s waiting for /$re/"
}

# e2e_pods SELECTOR N [SECONDS]: waits (default 30 s) until $E2E_NS holds at least N pods
# matching SELECTOR (the ReplicaSet controller's; Pending is fine) and prints their names.
e2e_pods() {
  local sel=$1 n=$2 secs=${3:-30} pods=""
  for _ in $(seq $((secs * 10))); do
    pods=$(kubectl -n "$E2E_NS" get pods -l "$sel" -o jsonpath='{.items[*].metadata.name}')
    if [ "$(wc -w <<<"$pods")" -ge "$n" ]; then
      echo "$pods"
      return 0
    fi
    sleep 0.1
  done
  e2e_fail "$(wc -w <<<"$pods") of $n pods matching $sel after ${secs}s (is kube-controller-manager running?)"
}

# e2e_min_gap FILE REGEX SECONDS: the controller's log lines matching REGEX (at least two) are
# SECONDS or more apart, by their klog times; prints the gaps ("30.0 s, 30.1 s").
e2e_min_gap() {
  local file=$1 re=$2 min=$3 gaps g
  gaps=$(grep -E "$re" "$file" | awk '{
    split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]
    if (n++) { d = s - p; if (d < 0) d += 86400; printf "%.1f\n", d }
    p = s }')
  [ -n "$gaps" ] || e2e_fail "fewer than two log lines match /$re/: no gap to check"
  while read -r g; do
    awk -v g="$g" -v m="$min" 'BEGIN { exit !(g >= m - 0.1) }' ||
      e2e_fail "two log lines matching /$re/ $g s apart, want at least $min s"
  done <<<"$gaps"
  echo "$gaps" | sed 's/$/ s/' | paste -sd, - | sed 's/,/, /g'
}

# e2e_nodesim NS...: the node simulator (test/tools/nodesim) plays scheduler and kubelet for
# the pods of these namespaces (PREFIX* for several) until the scenario exits: a Node of its
# own, pods bound to it and reported Running and Ready, deletions finished. For scenarios that
# need running pods (a rollout that completes, a PodDisruptionBudget counting healthy pods) on
# a control plane without kubelets. Off by itself when the cluster has a real Ready node.
e2e_nodesim() {
  local build=${OPTIPOD_BUILD:-build/rel} log="$E2E_TMP/nodesim.log" args=() ns pid
  case "$build" in /*) ;; *) build="$E2E_ROOT/$build" ;; esac
  local bin=${E2E_NODESIM:-$build/tools/nodesim}
  [ -x "$bin" ] || e2e_fail "no node simulator at $bin (make tools builds it)"
  for ns in "$@"; do args+=(--namespace "$ns"); done
  "$bin" --node "$E2E_NS-node" "${args[@]}" >"$log" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  for _ in $(seq 300); do
    if grep -q '^nodesim: ready' "$log"; then
      echo "node simulator: node $E2E_NS-node runs the pods of: $*"
      return 0
    fi
    if grep -q '^nodesim: not needed' "$log"; then
      echo "node simulator: off, $(sed -n 's/^nodesim: not needed: //p' "$log")"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; e2e_fail "the node simulator exited"; }
    sleep 0.1
  done
  cat "$log" >&2
  e2e_fail "the node simulator did not register its node in 30 s"
}

# Usage data for a scenario: a real Prometheus on loopback.
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
e2e_need_prometheus() {
  [ -x "$PROMETHEUS" ] && [ -x "$PROMTOOL" ] ||
    e2e_fail "needs Prometheus and promtool ($PROMETHEUS, $PROMTOOL; apt-get install prometheus) for usage data"
  command -v curl >/dev/null || e2e_fail "needs curl to wait for Prometheus (apt-get install curl)"
}

# e2e_usage FILE "POD..." CONTAINER:CORES:BYTES...: OpenMetrics for every pod named in the
# second argument (space-separated; NS/POD for a pod outside $E2E_NS), 3 h of samples every
# 30 s ending 15 min ago: a CPU counter rising at CORES and a constant working set of BYTES per
# container (each metric family's samples together, as OpenMetrics requires). One awk run
# writes it all: a scenario with hundreds of pods waits seconds, not minutes.
e2e_usage() {
  local om=$1 pods=$2
  shift 2
  awk -v pods="$pods" -v specs="$*" -v ns="$E2E_NS" -v start=$(($(date +%s) - 3 * 3600 - 900)) '
    BEGIN {
      np = split(pods, p, " "); nc = split(specs, c, " ")
      for (i = 1; i <= np; i++) {
        pn[i] = p[i]; pns[i] = ns
        if (index(p[i], "/")) { pns[i] = substr(p[i], 1, index(p[i], "/") - 1); pn[i] = substr(p[i], index(p[i], "/") + 1) }
      }
      for (j = 1; j <= nc; j++) { split(c[j], f, ":"); cn[j] = f[1]; rate[j] = f[2]; mem[j] = f[3] }
      for (i = 1; i <= np; i++) for (j = 1; j <= nc; j++) for (k = 0; k <= 330; k++)
        printf "container_cpu_usage_seconds_total{namespace=\"%s\",pod=\"%s\",container=\"%s\"} %.17g %d\n", pns[i], pn[i], cn[j], rate[j] * k * 30, start + k * 30
      for (i = 1; i <= np; i++) for (j = 1; j <= nc; j++) for (k = 0; k <= 330; k++)
        printf "container_memory_working_set_bytes{namespace=\"%s\",pod=\"%s\",container=\"%s\"} %s %d\n", pns[i], pn[i], cn[j], mem[j], start + k * 30
      print "# EOF"
    }' >"$om"
}

# e2e_prometheus FILE: backfill the OpenMetrics FILE into a new TSDB with promtool, start
# Prometheus on it on a free loopback port (stopped on exit) and set E2E_PROM_URL, which the
# scenario passes to the controller as --prometheus-url. Prometheus logs every query it
# answers to E2E_PROM_QUERY_LOG (one JSON line each), for scenarios that count them.
e2e_prometheus() {
  local om=$1 port
  mkdir -p "$E2E_TMP/tsdb"
  "$PROMTOOL" tsdb create-blocks-from openmetrics "$om" "$E2E_TMP/tsdb" >"$E2E_TMP/promtool.log" 2>&1 ||
    { cat "$E2E_TMP/promtool.log" >&2; e2e_fail "promtool could not backfill"; }
  # shellcheck disable=SC2034 # read by the scenarios that count queries
  E2E_PROM_QUERY_LOG="$E2E_TMP/queries.log"
  printf 'global:\n  scrape_interval: 1h\n  query_log_file: %s\n' "$E2E_PROM_QUERY_LOG" >"$E2E_TMP/prometheus.yml"
  port=$(e2e_free_ports 1)
  "$PROMETHEUS" --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/tsdb" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=30d --log.level=warn \
    >"$E2E_TMP/prometheus.log" 2>&1 &
  E2E_PIDS+=("$!")
  for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null || e2e_fail "Prometheus did not become ready"
  # shellcheck disable=SC2034 # read by the scenario that sourced this file
  E2E_PROM_URL="http://127.0.0.1:$port"
}
