#!/usr/bin/env bash
# The one-file install, dist/optipod.yaml, against a real API server: every
# object passes `kubectl apply --server-side --dry-run=server`, the README's
# command with nothing created. A dry run creates no namespace, so the server
# would not find optipod-system for the objects in it: the file is checked with
# that name replaced by the scenario's own namespace (created here, deleted on
# exit), and is otherwise unchanged. A CRD an earlier install left, owned by
# another field manager, would be an apply conflict: --force-conflicts, which a
# dry run only pretends to take.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"
root=$(cd "$here/.." && pwd)
manifest="$root/dist/optipod.yaml"
[ -f "$manifest" ] || e2e_fail "no $manifest (make manifests)"
objects=$(grep -c "^kind: " "$manifest" || true)
[ "$objects" -ge 12 ] || e2e_fail "only $objects objects in $manifest"

sed "s/\boptipod-system\b/$E2E_NS/g" "$manifest" >"$E2E_TMP/optipod.yaml"
kubectl create namespace "$E2E_NS" >/dev/null
kubectl apply --server-side --dry-run=server --force-conflicts -f "$E2E_TMP/optipod.yaml" \
  >"$E2E_TMP/apply.out" 2>&1 || { cat "$E2E_TMP/apply.out" >&2; e2e_fail "dist/optipod.yaml does not pass the server dry run"; }
ok=$(grep -c "serverside-applied (server dry run)" "$E2E_TMP/apply.out" || true)
[ "$ok" -eq "$objects" ] || { cat "$E2E_TMP/apply.out" >&2; e2e_fail "$ok of $objects objects accepted"; }
server=$(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n 1)
echo "server-side dry run of dist/optipod.yaml on ${server:-the server}: $ok of $objects objects accepted"
sed 's/^/  /' "$E2E_TMP/apply.out"
