# Shared helpers for e2e scenarios: a namespace of their own, cleaned up on
# exit, and waiting for a line in the controller's log.
set -euo pipefail

E2E_NS="optipod-e2e-$(date +%s)-$RANDOM"
E2E_TMP=$(mktemp -d)
E2E_PIDS=()

e2e_cleanup() {
  for p in "${E2E_PIDS[@]+"${E2E_PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  kubectl delete namespace "$E2E_NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT

e2e_fail() { echo "e2e: $*" >&2; exit 1; }

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
