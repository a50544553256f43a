#!/usr/bin/env bash
# make demo: optipod's main job on embedded sample data, then the controller's
# client reactor against the project's fake API server.
#
#  1. `optipod plan` right-sizes the sample workloads in docs/sample (five
#     Deployments from a documented usage model: diurnal web, memory leak,
#     spiky JVM, OOM-killed worker, app + sidecar), prints the recommendation
#     table and writes kustomize patches; a second run shows the export is
#     idempotent, and `kubectl kustomize` (when kubectl is installed) builds
#     the overlay with the patches applied.
#  2. `optipod backtest` replays the sample's second day through the engine
#     as the controller would have run it, under two policies side by side
#     (docs/sample/backtest): the changes each would have made, how often
#     usage ran over the recommended CPU request, memory against the request
#     and limit, and the saving against today's requests.
#  3. The real controller binary lists and watches 30 generated Deployments
#     that change every 400 ms on the fake API server, then shuts down cleanly
#     on SIGTERM.
set -euo pipefail
O=${1:-build/rel}
work=$(mktemp -d)
fa_pid=""
cleanup() {
  if [ -n "$fa_pid" ]; then kill "$fa_pid" 2>/dev/null || true; wait "$fa_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. optipod plan -f docs/sample/base --usage docs/sample/usage.csv --out <dir>"
"$O/optipod" plan -f docs/sample/base --usage docs/sample/usage.csv --out "$work/patches"
echo
echo "   patches written:"
(cd "$work/patches" && ls -1 | sed 's/^/     /')
echo "   one of them:"
for f in "$work/patches"/*; do
  case $f in */kustomization.yaml) continue ;; esac
  sed 's/^/     | /' "$f"
  break
done
"$O/optipod" plan -f docs/sample/base --usage docs/sample/usage.csv --out "$work/patches" >/dev/null
if diff -r docs/sample/patches "$work/patches" >/dev/null; then
  echo "   a second run wrote identical bytes, equal to the committed docs/sample/patches (idempotent)"
else
  echo "   the export differs from docs/sample/patches:"; diff -r docs/sample/patches "$work/patches" || true
  exit 1
fi
if command -v kubectl >/dev/null 2>&1; then
  echo
  echo "   kubectl kustomize docs/sample/overlay (the base with the patches applied), resources only:"
  kubectl kustomize docs/sample/overlay | grep -E '^  name:|^      - name:|cpu:|memory:' | sed 's/^/     /'
fi
echo

echo "== 2. optipod backtest: two policies over the sample's second day, before turning Auto on"
"$O/optipod" backtest -f docs/sample/base --usage docs/sample/usage.csv \
  --policy docs/sample/backtest/steady.yaml --policy docs/sample/backtest/tight.yaml
echo

echo "== 3. optipod --self-check"
"$O/optipod" --self-check
echo

echo "== 4. the controller's client reactor: 30 Deployments on the fake API server, one change every 400 ms"
"$O/tools/fakeapi_server" --kubeconfig-out "$work/kubeconfig" --deployments 30 --namespaces 3 \
  --churn 400ms --bookmarks 1s >"$work/fakeapi.out" 2>&1 &
fa_pid=$!
for _ in $(seq 50); do grep -q '^ready' "$work/fakeapi.out" 2>/dev/null && break; sleep 0.1; done
grep '^ready' "$work/fakeapi.out" || { cat "$work/fakeapi.out"; exit 1; }
"$O/optipod" --kubeconfig "$work/kubeconfig" -v 1 --stats-interval 1s \
  --health-probe-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 &
op_pid=$!
sleep 3
kill -TERM "$op_pid"
set +e
wait "$op_pid"
rc=$?
set -e
echo
echo "optipod exited with status $rc after SIGTERM (0 = clean shutdown, no handle left open)"
[ "$rc" -eq 0 ]
