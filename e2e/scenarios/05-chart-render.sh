#!/usr/bin/env bash
# The Helm chart against a real API server. The chart is rendered with
# `helm template` when Helm is installed, else with the project's renderer of
# the chart's template subset (test/tools/render_chart). Then:
#  1. the CRD is installed for real (server-side apply; the chart's copy is the
#     same file, test_chart checks it), since `kubectl auth can-i` only answers
#     for resources the API serves; every other object goes through
#     `kubectl apply --dry-run=server`, so the API server validates every field
#     (RBAC rules, webhook configuration, Deployment, PodDisruptionBudget)
#     without anything being created;
#  2. the ServiceAccount and RBAC are applied for real under a unique release
#     name, and `kubectl auth can-i` as that ServiceAccount shows what the
#     controller needs is allowed and what it does not need is denied.
# Everything created is deleted on exit (the namespace, and the cluster-scoped
# ClusterRole and ClusterRoleBinding by name) except the CRD, which other
# scenarios and other users of the cluster share.
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"
root=$(cd "$here/.." && pwd)
build=${OPTIPOD_BUILD:-build/rel}
rel="optipod-e2e-$RANDOM"
sa="system:serviceaccount:$E2E_NS:$rel"
manifest="$E2E_TMP/chart.yaml"

chart_cleanup() {
  kubectl delete clusterrolebinding "$rel" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrole "$rel" --ignore-not-found >/dev/null 2>&1 || true
  e2e_cleanup
}
trap chart_cleanup EXIT

# render OUT [VALUES.yaml]: the chart for the release, over the given values file
render() {
  local out=$1
  shift
  if command -v helm >/dev/null 2>&1; then
    helm template "$rel" "$root/charts/optipod" --namespace "$E2E_NS" ${1:+-f "$1"} >"$out" ||
      e2e_fail "helm template failed"
    renderer="$(helm version --short 2>/dev/null)"
  else
    (cd "$root" && make -s "$build/tools/render_chart") || e2e_fail "cannot build $build/tools/render_chart"
    (cd "$root" && "$build/tools/render_chart" --release "$rel" --namespace "$E2E_NS" \
      ${1:+-f "$1"} --out "$out" 2>"$E2E_TMP/render.log") ||
      { cat "$E2E_TMP/render.log" >&2; e2e_fail "rendering the chart failed"; }
    renderer="render_chart, the chart subset renderer (no helm on the PATH)"
  fi
}
render "$manifest"
echo "rendered with $renderer"
objects=$(grep -c "^kind: " "$manifest" || true)
[ "$objects" -ge 8 ] || e2e_fail "only $objects objects rendered"

kubectl create namespace "$E2E_NS" >/dev/null

# 1. server-side validation of everything the chart installs
e2e_install_crd
kubectl apply --dry-run=server -f "$manifest" >"$E2E_TMP/apply.out" 2>&1 ||
  { cat "$E2E_TMP/apply.out" >&2; e2e_fail "the chart does not pass server dry-run"; }
ok=$(grep -c "(server dry run)" "$E2E_TMP/apply.out" || true)
[ "$ok" -eq "$objects" ] || { cat "$E2E_TMP/apply.out" >&2; e2e_fail "$ok of $objects objects accepted"; }
echo "the CRD installed; server dry-run: $objects objects accepted"

# 2. the RBAC for real, then what the ServiceAccount may and may not do
awk 'function flush() { if (kind in keep) printf "---\n%s", buf; buf = ""; kind = "" }
     BEGIN { split("ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding", k, " ");
             for (i in k) keep[k[i]] = 1 }
     /^---$/ { flush(); next }
     { buf = buf $0 "\n"; if ($0 ~ /^kind: /) kind = substr($0, 7) }
     END { flush() }' "$manifest" >"$E2E_TMP/rbac.yaml"
[ "$(grep -c '^kind: ' "$E2E_TMP/rbac.yaml")" -eq 5 ] || e2e_fail "expected 5 RBAC objects"
kubectl apply -f "$E2E_TMP/rbac.yaml" >/dev/null || e2e_fail "applying the RBAC failed"

can() { kubectl auth can-i "$@" --as="$sa" 2>/dev/null; }
allow() { [ "$(can "$@")" = yes ] || e2e_fail "the controller cannot: $*"; }
deny() { [ "$(can "$@")" = no ] || e2e_fail "the controller may, but must not: $*"; }

allow patch deployments.apps -n default
allow watch statefulsets.apps -A
allow list daemonsets.apps -A
allow watch replicasets.apps -A
allow list pods -A
allow patch pods --subresource=resize -n default
allow watch namespaces
allow list horizontalpodautoscalers.autoscaling -A
allow watch poddisruptionbudgets.policy -A
allow list optimizationpolicies.optipod.io -A
allow patch optimizationpolicies.optipod.io --subresource=status -n default
allow create events.events.k8s.io -n default
allow patch events.events.k8s.io -n default
allow update leases.coordination.k8s.io -n "$E2E_NS"
allow get "secrets/$rel-webhook-tls" -n "$E2E_NS"
allow patch "mutatingwebhookconfigurations.admissionregistration.k8s.io/$rel-webhook"

deny get secrets -n default
deny list secrets -n "$E2E_NS"
deny get secrets/other -n "$E2E_NS"
deny update leases.coordination.k8s.io -n default
deny delete deployments.apps -n default
deny patch poddisruptionbudgets.policy -n default
deny create pods --subresource=eviction -n default
deny update deployments.apps -n default
deny create pods -n default
deny delete pods -n default
deny patch pods -n default
deny patch replicasets.apps -n default
deny update optimizationpolicies.optipod.io -n default
deny patch mutatingwebhookconfigurations.admissionregistration.k8s.io/other
deny create mutatingwebhookconfigurations.admissionregistration.k8s.io
deny list applications.argoproj.io -A
deny list kustomizations.kustomize.toolkit.fluxcd.io -A
deny '*' '*'
allow get "configmaps/$rel-usage-checkpoint" -n default
allow patch "configmaps/$rel-usage-checkpoint" -n default
allow create configmaps -n default
deny get configmaps/other -n default
deny delete "configmaps/$rel-usage-checkpoint" -n default
echo "RBAC: every needed verb allowed, the rest denied"

# 3. Prometheus credentials from Secrets, tenant headers and a checkpoint interval: the
#    Deployment they render passes the API server's validation, with each flag in its args
cat >"$E2E_TMP/auth-values.yaml" <<'EOF'
controller:
  checkpointInterval: 2m
prometheus:
  url: https://mimir.example:8080/prometheus
  bearerToken: {enabled: true, secretName: mimir-token, key: token}
  basicAuth: {enabled: true, secretName: mimir-basic, key: auth}
  ca: {enabled: true, secretName: mimir-ca, key: ca.crt}
  headers: ["X-Scope-OrgID: team-a", "X-Note: a b"]
EOF
render "$E2E_TMP/auth.yaml" "$E2E_TMP/auth-values.yaml"
awk '/^---$/ { if (kind == "Deployment") printf "---\n%s", buf; buf = ""; kind = ""; next }
     { buf = buf $0 "\n"; if ($0 ~ /^kind: /) kind = substr($0, 7) }
     END { if (kind == "Deployment") printf "---\n%s", buf }' "$E2E_TMP/auth.yaml" >"$E2E_TMP/auth-deploy.yaml"
kubectl apply --dry-run=server -n "$E2E_NS" -f "$E2E_TMP/auth-deploy.yaml" -o json \
  >"$E2E_TMP/auth.json" 2>"$E2E_TMP/auth.err" ||
  { cat "$E2E_TMP/auth.err" >&2; e2e_fail "the Deployment with Prometheus credentials does not pass server dry-run"; }
for want in --checkpoint-interval=2m --prometheus-bearer-token-file=/etc/optipod/prometheus-token/token \
  --prometheus-basic-auth-file=/etc/optipod/prometheus-basic-auth/auth \
  --prometheus-ca-file=/etc/optipod/prometheus-ca/ca.crt "--prometheus-header=X-Scope-OrgID: team-a" \
  '"secretName": "mimir-token"' '"secretName": "mimir-basic"' '"secretName": "mimir-ca"'; do
  grep -qF -- "$want" "$E2E_TMP/auth.json" || e2e_fail "the server's Deployment lacks $want"
done
echo "Prometheus credentials from Secrets and tenant headers: the Deployment accepted (server dry-run)"
