#!/usr/bin/env bash
# End-to-end scenarios against a real cluster. Needs KUBECONFIG (or
# ~/.kube/config) pointing at a reachable API server; kind, k3d or any cluster.
# Without one it says why it skips and exits 0 with a "skipped" line, so a
# missing cluster is never mistaken for a pass.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${OPTIPOD_BUILD:-build/rel}
cd "$root" || exit 1

skip() { echo "e2e: SKIPPED: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }

kc=${KUBECONFIG:-$HOME/.kube/config}
[ -n "${KUBECONFIG:-}" ] || [ -f "$kc" ] || skip "no KUBECONFIG set and no ~/.kube/config (start kind or k3d and export KUBECONFIG)"
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not on the PATH (the scenarios use it to play Argo CD and Flux)"
if ! kubectl version --request-timeout=5s >/dev/null 2>&1; then
  skip "the cluster in '$kc' does not answer: $(kubectl version --request-timeout=5s 2>&1 | tail -n 1)"
fi

# A scenario exits 0 when it passed, 77 when it cannot run on this cluster
# (it says why), anything else when it failed.
passed=0 failed=0 skipped=0
for s in "$here"/scenarios/*.sh; do
  [ -e "$s" ] || continue
  name=$(basename "$s" .sh)
  echo "== e2e $name"
  OPTIPOD_BIN="$root/$build/optipod" KUBECTL_OPTIPOD="$root/$build/kubectl-optipod" bash "$s"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok   $name"; passed=$((passed + 1))
  elif [ "$rc" -eq 77 ]; then
    echo "skip $name"; skipped=$((skipped + 1))
  else
    echo "FAIL $name (exit $rc)"; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
