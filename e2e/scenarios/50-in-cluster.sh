#!/usr/bin/env bash
# The controller exactly as the chart runs it, on a real API server, proving least privilege:
#  1. the chart is rendered for a unique release in a namespace of its own; its ServiceAccount,
#     ClusterRole, ClusterRoleBinding, Role and RoleBinding are applied for real, and its
#     MutatingWebhookConfiguration too (retargeted, like 30-webhook, to this host's address and
#     to this scenario's namespace only: nothing here runs a Service);
#  2. the controller runs with the Deployment's own args, rendered with the values this host
#     needs (free ports, the loopback Prometheus, -v 2, and through controller.extraArgs the
#     webhook's loopback address and, on a shared cluster, --namespace: see below), and the
#     in-cluster configuration only:
#     KUBERNETES_SERVICE_HOST/PORT, and a token from the TokenRequest API
#     (`kubectl create token`), the cluster's CA and the namespace bind-mounted at
#     /var/run/secrets/kubernetes.io/serviceaccount in a private mount namespace
#     (`unshare -m`), as the chart's non-root user 65532 when run as root;
#  3. it leads on the chart's Lease, keeps the webhook certificate in the chart's Secret and
#     patches the chart's webhook configuration, and reconciles three Deployments: one under
#     a Recommend policy, one under Auto with the ssa strategy, one under Auto with the webhook
#     strategy (a pod created afterwards gets its recommendation injected);
#  4. not one request is refused: no 403 in the API server's answers as the controller counts
#     them (optipod_api_request_errors_total), no 403 or Forbidden in its log. A request the
#     code makes that the chart does not grant fails here.
# Needs no kubelet: pods stay Pending, admission happens at creation. The API server must reach
# this host for the webhook: the kubeconfig's server when it is on loopback (the API server runs
# here), else E2E_WEBHOOK_HOST; otherwise that part is skipped and said so. A test cluster is
# often shared, and the chart's controller would reconcile every namespace's policies (other
# runs' too): it watches only this scenario's namespace (--namespace, through
# controller.extraArgs) unless E2E_ALL_NAMESPACES=1 (a cluster of your own); its RBAC is the
# chart's either way.
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
build=${OPTIPOD_BUILD:-build/rel}

e2e_skip() {
  echo "e2e: SKIPPED 50-in-cluster: $*"
  exit 77
}

command -v python3 >/dev/null || e2e_fail "needs python3 (the rendered manifest, ports, JSON)"
python3 -c 'import yaml' 2>/dev/null || e2e_fail "needs python3-yaml to read the rendered chart (apt-get install python3-yaml)"
command -v unshare >/dev/null || e2e_skip "no unshare (util-linux) for the private mount namespace"
e2e_need_prometheus
# A private mount namespace: as root, else through a user namespace where the kernel allows it.
if [ "$(id -u)" = 0 ]; then
  UNSHARE=(unshare -m)
  RUN_AS=(setpriv --reuid=65532 --regid=65532 --clear-groups) # the chart's runAsUser
  command -v setpriv >/dev/null || RUN_AS=()
else
  UNSHARE=(unshare -r -m)
  RUN_AS=()
fi
"${UNSHARE[@]}" true 2>/dev/null || e2e_skip "cannot create a mount namespace ($(id -un)); run as root"

# ---- the API server as a pod sees it -------------------------------------------------------------
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
hostport=${server#https://}
hostport=${hostport%%/*}
[ "$server" != "$hostport" ] || e2e_skip "the API server '$server' is not https"
api_host=${hostport%:*}
api_port=${hostport##*:}
[ "$api_port" != "$hostport" ] || api_port=443
api_host=${api_host#[}
api_host=${api_host%]}
sa_dir="$E2E_TMP/serviceaccount"
mkdir -p "$sa_dir"
kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$sa_dir/ca.crt" 2>/dev/null || true
if [ ! -s "$sa_dir/ca.crt" ]; then
  ca_file=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  if [ -z "$ca_file" ] || [ ! -r "$ca_file" ]; then
    e2e_skip "the kubeconfig names no CA for '$server' (a pod always has one)"
  fi
  cp "$ca_file" "$sa_dir/ca.crt"
fi

case "$api_host" in
127.* | localhost | ::1) wh_host=127.0.0.1 ;;
*) wh_host=${E2E_WEBHOOK_HOST:-} ;;
esac
read -r wh_port probe_port metrics_port <<<"$(e2e_free_ports 3)"

# ---- the chart, rendered for this release --------------------------------------------------------
rel="optipod-ic-$RANDOM"
SYS_NS="$E2E_NS-sys" # the release namespace
sa="system:serviceaccount:$SYS_NS:$rel"
manifest="$E2E_TMP/chart.yaml"
ic_cleanup() {
  # The webhook configuration first: nothing may call a stopped webhook.
  kubectl delete mutatingwebhookconfiguration "$rel-webhook" --ignore-not-found >/dev/null 2>&1 || true
  e2e_cleanup
  kubectl delete namespace "$SYS_NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrolebinding "$rel" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrole "$rel" --ignore-not-found >/dev/null 2>&1 || true
}
trap ic_cleanup EXIT

# ---- the cluster side ----------------------------------------------------------------------------
e2e_install_crd
kubectl create namespace "$SYS_NS" >/dev/null
kubectl create namespace "$E2E_NS" >/dev/null
kubectl label namespace "$E2E_NS" optipod.io/webhook=enabled >/dev/null

deployment() { # name
  kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, namespace: $E2E_NS, labels: {app: $1, optimize: $1}}
spec:
  replicas: 1
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: "1", memory: 1Gi}}
EOF
}
policy() { # name mode strategy
  kubectl apply --server-side --field-manager=optipod-e2e -f - >/dev/null <<EOF
apiVersion: optipod.io/v1alpha1
kind: OptimizationPolicy
metadata: {name: $1, namespace: $E2E_NS}
spec:
  mode: $2
  selector: {workloadSelector: {matchLabels: {optimize: $1}}}
  metricsConfig: {provider: prometheus, rollingWindow: 3h, percentile: P90}
  minHistory: {samples: 10, duration: 1h}
  updateStrategy: {strategy: $3}
  reconcileInterval: 10s
EOF
}
for d in rec ssa wh; do deployment "$d"; done
pods=""
for _ in $(seq 300); do
  pods=$(kubectl -n "$E2E_NS" get pods -o jsonpath='{.items[*].metadata.name}')
  [ "$(echo "$pods" | wc -w)" -ge 3 ] && break
  sleep 0.1
done
[ "$(echo "$pods" | wc -w)" -ge 3 ] || e2e_fail "no pods for the Deployments (is kube-controller-manager running?)"
e2e_usage "$E2E_TMP/usage.om" "$pods" app:0.2:209715200
e2e_prometheus "$E2E_TMP/usage.om"

# ---- the chart, rendered for this release with this host's values ---------------------------------
sets=(--set "probes.port=$probe_port" --set "metrics.port=$metrics_port" --set "webhook.port=$wh_port"
  --set "prometheus.url=$E2E_PROM_URL" --set controller.verbosity=2)
extra=()
[ -n "$wh_host" ] && extra+=("--webhook-extra-sans=$wh_host")
[ -n "${E2E_ALL_NAMESPACES:-}" ] || extra+=("--namespace=$E2E_NS")
if [ "${#extra[@]}" -gt 0 ]; then
  list=$(
    IFS=,
    echo "${extra[*]}"
  )
  sets+=(--set "controller.extraArgs={$list}")
fi
if command -v helm >/dev/null 2>&1; then
  helm template "$rel" "$root/charts/optipod" --namespace "$SYS_NS" "${sets[@]}" >"$manifest" ||
    e2e_fail "helm template failed"
else
  (cd "$root" && make -s "$build/tools/render_chart") || e2e_fail "cannot build $build/tools/render_chart"
  (cd "$root" && "$build/tools/render_chart" --release "$rel" --namespace "$SYS_NS" "${sets[@]}" \
    --out "$manifest" 2>"$E2E_TMP/render.log") ||
    { cat "$E2E_TMP/render.log" >&2; e2e_fail "rendering the chart failed"; }
fi
# From the manifest: the RBAC objects as they are, the webhook configuration retargeted to
# this host and to this scenario's namespace, and the controller's args as they are.
python3 - "$manifest" "$E2E_TMP" "$E2E_NS" "$wh_host" "$wh_port" <<'EOF' ||
import sys, yaml
manifest, tmp, app_ns, wh_host, wh_port = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
assert len(rbac) == 5, "want 5 RBAC objects, got %d" % len(rbac)
yaml.safe_dump_all(rbac, open(tmp + "/rbac.yaml", "w"))
mwc = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
assert len(mwc) == 1, "want one MutatingWebhookConfiguration"
if wh_host:
    for w in mwc[0]["webhooks"]:
        w["clientConfig"] = {"url": "https://%s:%s/mutate-pods" % (wh_host, wh_port)}
        w["namespaceSelector"].setdefault("matchLabels", {})["kubernetes.io/metadata.name"] = app_ns
    yaml.safe_dump(mwc[0], open(tmp + "/mwc.yaml", "w"))
dep = [d for d in docs if d["kind"] == "Deployment"][0]
c = dep["spec"]["template"]["spec"]["containers"][0]
assert not c.get("env") and not c.get("command"), "the Deployment sets env or command: run those too"
open(tmp + "/args", "w").write("\n".join(c["args"]) + "\n")
print("chart: Deployment %s/%s, container %s: %d args" % (dep["metadata"]["namespace"],
                                                          dep["metadata"]["name"], c["name"], len(c["args"])))
EOF
  e2e_fail "reading the rendered chart failed"
kubectl apply -f "$E2E_TMP/rbac.yaml" >/dev/null || e2e_fail "applying the chart's RBAC failed"
if [ -n "$wh_host" ]; then
  kubectl apply -f "$E2E_TMP/mwc.yaml" >/dev/null || e2e_fail "applying the webhook configuration failed"
fi
policy rec Recommend ssa
policy ssa Auto ssa
policy wh Auto webhook

# ---- the pod's identity: a TokenRequest token, the CA, the namespace -------------------------------
kubectl -n "$SYS_NS" create token "$rel" --duration=1h >"$sa_dir/token" || e2e_fail "TokenRequest for $sa failed"
printf '%s' "$SYS_NS" >"$sa_dir/namespace"
chmod 0755 "$sa_dir" "$E2E_TMP"
chmod 0644 "$sa_dir"/*
mapfile -t args <"$E2E_TMP/args"
[ "$(kubectl auth can-i get pods -A --token "$(cat "$sa_dir/token")" 2>/dev/null)" = yes ] ||
  e2e_fail "the token does not act as $sa"

log="$E2E_TMP/optipod.log"
# The mount namespace sees a tmpfs on /run (so nothing appears on the host) holding the
# service-account directory, bind-mounted read-only as the kubelet mounts it.
# shellcheck disable=SC2016 # expanded by the inner shell
env -i PATH=/usr/bin:/bin HOME=/nonexistent KUBERNETES_SERVICE_HOST="$api_host" \
  KUBERNETES_SERVICE_PORT="$api_port" SA_DIR="$sa_dir" \
  "${UNSHARE[@]}" sh -c 'mount -t tmpfs -o size=1m,mode=755 optipod-e2e /run &&
    mkdir -p /run/secrets/kubernetes.io/serviceaccount &&
    mount --bind "$SA_DIR" /run/secrets/kubernetes.io/serviceaccount &&
    mount -o remount,bind,ro /run/secrets/kubernetes.io/serviceaccount &&
    exec "$@"' optipod "${RUN_AS[@]}" "$OPTIPOD_BIN" "${args[@]}" >"$log" 2>&1 &
pid=$!
E2E_PIDS+=("$pid")

e2e_wait_log "$log" "API server https://.* \(from in-cluster" 10
e2e_wait_log "$log" "lease '$SYS_NS/$rel-leader': .* started leading" 30
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/rec: applied: recommendation published" 60
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/ssa: applied" 60
e2e_wait_log "$log" "reconcile Deployment/$E2E_NS/wh: applied: recommendation published" 60
e2e_wait_log "$log" "secret '$SYS_NS/$rel-webhook-tls' written with a new certificate" 30
e2e_wait_log "$log" "webhook on https port $wh_port" 30

ann() { kubectl -n "$E2E_NS" get deployment "$1" -o jsonpath="{.metadata.annotations.optipod\.io/$2}"; }
# A failure from here on shows the controller's log and what the workloads carry.
ic_fail() {
  echo "--- log ($log) ---" >&2
  tail -n 40 "$log" >&2
  kubectl -n "$E2E_NS" get deployments --show-managed-fields -o json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["items"]:
    m = d["metadata"]
    print(m["name"], json.dumps(m.get("annotations", {})))
    for e in m.get("managedFields", []):
        print("   ", e["manager"], e["operation"], e.get("time"), e.get("subresource", ""))' >&2 || true
  e2e_fail "$@"
}
tmpl() { kubectl -n "$E2E_NS" get deployment "$1" -o jsonpath="{.spec.template.spec.containers[0].resources.requests.$2}"; }
rec_cpu=$(ann rec cpu-request\\.app)
[ -n "$rec_cpu" ] || ic_fail "Recommend: no optipod.io/cpu-request.app annotation on rec"
[ "$(tmpl rec cpu)" = "1" ] || ic_fail "Recommend changed rec's requests"
for _ in $(seq 100); do [ "$(tmpl ssa cpu)" != "1" ] && break; sleep 0.1; done
ssa_cpu=$(tmpl ssa cpu)
[ "$ssa_cpu" != "1" ] || ic_fail "Auto/ssa: ssa's template still asks for 1 CPU"
wh_cpu=$(ann wh cpu-request\\.app)
if [ "$(ann wh strategy)" != webhook ] || [ -z "$wh_cpu" ]; then
  ic_fail "Auto/webhook: wh is not annotated for the webhook"
fi
[ "$(tmpl wh cpu)" = "1" ] || ic_fail "Auto/webhook changed wh's template"
for p in rec ssa wh; do
  st=$(kubectl -n "$E2E_NS" get optimizationpolicy "$p" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  [ "$st" = True ] || ic_fail "policy $p: Ready is '$st'"
done

injected="skipped (set E2E_WEBHOOK_HOST: the API server cannot reach this host)"
if [ -n "$wh_host" ]; then
  e2e_wait_log "$log" "caBundle of mutatingwebhookconfiguration '$rel-webhook' updated" 30
  kubectl -n "$E2E_NS" scale deployment wh --replicas=2 >/dev/null
  new=""
  for _ in $(seq 300); do
    for p in $(kubectl -n "$E2E_NS" get pods -l app=wh -o jsonpath='{.items[*].metadata.name}'); do
      case " $pods " in *" $p "*) ;; *) new=$p ;; esac
    done
    [ -n "$new" ] && break
    sleep 0.1
  done
  [ -n "$new" ] || ic_fail "scaling wh created no pod"
  got=$(kubectl -n "$E2E_NS" get pod "$new" -o jsonpath='{.spec.containers[0].resources.requests.cpu}')
  [ "$got" = "$wh_cpu" ] || ic_fail "pod $new: cpu request '$got', the webhook should have injected '$wh_cpu'"
  injected="pod $new admitted with cpu $got (template: 1)"
fi

# ---- not one request refused ----------------------------------------------------------------------
metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics") || e2e_fail "no /metrics on port $metrics_port"
refused=$(grep -E '^optipod_api_request_errors_total\{.*code="403"' <<<"$metrics" || true)
[ -z "$refused" ] || e2e_fail "the API server refused requests the chart does not grant: $refused"
if grep -nE '(^|[^0-9])403([^0-9]|$)|[Ff]orbidden' "$log" >"$E2E_TMP/refused.txt"; then
  cat "$E2E_TMP/refused.txt" >&2
  e2e_fail "the controller's log shows refused requests"
fi
grep -E '^optipod_is_leader\{lease="'"$SYS_NS/$rel"'-leader"\} 1$' <<<"$metrics" >/dev/null ||
  e2e_fail "optipod_is_leader is not 1 for the chart's Lease"
summary=$(awk '/^optipod_api_request_duration_seconds_count\{verb="/ {
    v = $1; sub(/.*verb="/, "", v); sub(/".*/, "", v); n[v] = $2; t += $2 }
  END { for (v in n) s = s sprintf(" %s %d", v, n[v]); printf "%d requests (%s)", t, substr(s, 2) }' <<<"$metrics")
others=$(grep -E '^optipod_api_request_errors_total\{' <<<"$metrics" |
  sed -E 's/^optipod_api_request_errors_total\{verb="([^"]*)",code="([^"]*)"\} (.*)/\1 \2 x\3/' | tr '\n' ',' | sed 's/,$//')

e2e_stop_controller "$pid" "$log"
holder=$(kubectl -n "$SYS_NS" get lease "$rel-leader" -o jsonpath='{.spec.holderIdentity}')
[ -z "$holder" ] || e2e_fail "the Lease still names '$holder' after SIGTERM"
e2e_no_errors "$log"
warnings=$(grep -cE '^W[0-9]{4} ' "$log" || true)

echo "in-cluster: as $sa (TokenRequest token, in-cluster config from /var/run/secrets/kubernetes.io/serviceaccount${RUN_AS[*]:+, uid 65532}) against $server"
echo "in-cluster: watching ${E2E_ALL_NAMESPACES:+all namespaces}${E2E_ALL_NAMESPACES:-$E2E_NS}; the chart's RBAC applied; lease $SYS_NS/$rel-leader led and released; webhook Secret and caBundle written"
echo "in-cluster: Recommend rec annotated cpu $rec_cpu; Auto/ssa ssa template cpu 1 -> $ssa_cpu; Auto/webhook wh annotated cpu $wh_cpu; $injected"
echo "in-cluster: $summary; refused (403): 0; other error answers: ${others:-none}; log: 0 errors, $warnings warnings"
