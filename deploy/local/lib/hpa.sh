# shellcheck shell=bash
# The reference pipeline segment-autoscaler is measured against (benches/hpa-reaction):
# kube-controller-manager's HPA controller, and prometheus-adapter serving the stack's Prometheus
# as External metrics through the API server's aggregation layer. Opt-in: `stack up hpa`.
#
# The API server reaches the adapter through an ExternalName Service (localhost): the
# aggregator's default service resolution follows it, while Endpoints may not hold loopback
# addresses. Both processes run as the stack administrator; their RBAC is not what is compared.

PROMETHEUS_ADAPTER_VERSION=${PROMETHEUS_ADAPTER_VERSION:-v0.12.0}
# Static (no cgo): the same binary runs here and in a FROM-scratch image on the cluster.
PROMETHEUS_ADAPTER_HOME="$STACK_CACHE/prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION-static"
PROMETHEUS_ADAPTER_PORT=${PROMETHEUS_ADAPTER_PORT:-$((16444 + STACK_PORT_OFFSET))}
KUBE_CONTROLLER_MANAGER_PORT=${KUBE_CONTROLLER_MANAGER_PORT:-$((10257 + STACK_PORT_OFFSET))}
# Kubernetes' and the adapter's defaults; benches/hpa-reaction's tuned pipeline lowers them.
HPA_SYNC_PERIOD=${HPA_SYNC_PERIOD:-15s}
HPA_DOWNSCALE_STABILIZATION=${HPA_DOWNSCALE_STABILIZATION:-5m0s}
PROMETHEUS_ADAPTER_RELIST_INTERVAL=${PROMETHEUS_ADAPTER_RELIST_INTERVAL:-10m}

HPA_RUN="$STACK_RUN/hpa"
HPA_ADAPTER_NAMESPACE=monitoring
PROMETHEUS_ADAPTER_BIN="$PROMETHEUS_ADAPTER_HOME/bin/adapter"
KUBE_CONTROLLER_MANAGER_BIN="$KUBE_HOME/bin/kube-controller-manager"

hpa_installed() { [[ -x $KUBE_CONTROLLER_MANAGER_BIN && -x $PROMETHEUS_ADAPTER_BIN ]]; }

hpa_install() {
  hpa_installed && return 0
  kubernetes_install
  if [[ ! -x $KUBE_CONTROLLER_MANAGER_BIN ]]; then
    log "hpa: building kube-controller-manager $KUBE_VERSION (same module as kube-apiserver)"
    (cd "$KUBE_HOME/src" &&
      run_logged kube-build-controller-manager go build -trimpath -o "$KUBE_CONTROLLER_MANAGER_BIN" \
        k8s.io/kubernetes/cmd/kube-controller-manager) || die "kube-controller-manager build failed"
  fi
  prometheus_adapter_build
  log "hpa: installed kube-controller-manager and prometheus-adapter"
}

# prometheus_adapter_build: the adapter's binary, once per version (the hpa component runs it
# beside the kubernetes component, the prometheus-adapter component in a pod on the cluster).
prometheus_adapter_build() {
  if [[ ! -x $PROMETHEUS_ADAPTER_BIN ]]; then
    log "building prometheus-adapter $PROMETHEUS_ADAPTER_VERSION from the Go module proxy"
    # `go install pkg@version` also asks the proxy for the module's version list, which it
    # refuses (403); a module requiring the exact version builds without that list.
    local src="$PROMETHEUS_ADAPTER_HOME/src"
    rm -rf "$src" && mkdir -p "$src"
    printf '%s\n' "module segment-autoscaler.local/adapter-build" "" "go 1.22.1" "" \
      "require sigs.k8s.io/prometheus-adapter $PROMETHEUS_ADAPTER_VERSION" >"$src/go.mod"
    printf '%s\n' "//go:build tools" "" "package tools" "" \
      'import _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"' >"$src/tools.go"
    (cd "$src" &&
      GOFLAGS=-mod=mod run_logged prometheus-adapter-mod-tidy go mod tidy &&
      CGO_ENABLED=0 run_logged prometheus-adapter-build go build -trimpath -o "$PROMETHEUS_ADAPTER_BIN" \
        sigs.k8s.io/prometheus-adapter/cmd/adapter) || die "prometheus-adapter build failed"
  fi
}

# The External metric the reference HPA reads: the controller's gauge, one value per stream.
# The reference demo's rule had no label matchers in metricsQuery, so every stream was summed;
# here the HPA's metric selector (scope, stream) reaches the query.
hpa_adapter_rules() {
  cat <<'YAML'
externalRules:
  - seriesQuery: 'pravega_controller_segments_count{scope!="",stream!=""}'
    resources: {namespaced: false}
    metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (scope, stream)'
YAML
}
hpa_write_adapter_config() { hpa_adapter_rules >"$HPA_RUN/adapter.yaml"; }

# The extension API is served: the aggregator marked the APIService Available.
hpa_external_metrics_ready() {
  kubectl_admin get --raw /apis/external.metrics.k8s.io/v1beta1 >/dev/null
}

hpa_controller_manager_ready() {
  curl -fsS -k "https://$STACK_HOST:$KUBE_CONTROLLER_MANAGER_PORT/healthz" | grep -qx ok
}

hpa_up() {
  hpa_installed || die "hpa is not installed: run '$0 install hpa'"
  process_alive kube-apiserver || die "hpa needs the stack's kubernetes: run '$0 up kubernetes' first"
  if process_alive kube-controller-manager; then log "hpa: already running"; return 0; fi
  ensure_ports_free hpa "$PROMETHEUS_ADAPTER_PORT" "$KUBE_CONTROLLER_MANAGER_PORT"
  rm -rf "$HPA_RUN" && mkdir -p "$HPA_RUN"
  local service=prometheus-adapter
  (cd "$HPA_RUN" && kubernetes_sign_certificate adapter "/CN=$service" serverAuth \
    "DNS:$service.$HPA_ADAPTER_NAMESPACE.svc,DNS:localhost,IP:127.0.0.1" "$KUBE_RUN/pki/ca") \
    >"$HPA_RUN/pki.log" 2>&1 || fail_with_log "hpa pki" "$HPA_RUN/pki.log"
  hpa_write_adapter_config

  log "hpa: starting prometheus-adapter $PROMETHEUS_ADAPTER_VERSION (https://$STACK_HOST:$PROMETHEUS_ADAPTER_PORT, Prometheus $(prometheus_endpoint))"
  start_process prometheus-adapter "$HPA_RUN/prometheus-adapter.log" "$PROMETHEUS_ADAPTER_BIN" \
    --secure-port "$PROMETHEUS_ADAPTER_PORT" --bind-address "$STACK_HOST" \
    --tls-cert-file "$HPA_RUN/adapter.crt" --tls-private-key-file "$HPA_RUN/adapter.key" \
    --lister-kubeconfig "$KUBECONFIG_ADMIN" --authentication-kubeconfig "$KUBECONFIG_ADMIN" \
    --authorization-kubeconfig "$KUBECONFIG_ADMIN" \
    --prometheus-url "$(prometheus_endpoint)" --config "$HPA_RUN/adapter.yaml" \
    --metrics-relist-interval "$PROMETHEUS_ADAPTER_RELIST_INTERVAL"
  kubectl_admin apply -f - >"$HPA_RUN/apply.log" 2>&1 <<YAML || fail_with_log "hpa objects" "$HPA_RUN/apply.log"
apiVersion: v1
kind: Namespace
metadata: {name: $HPA_ADAPTER_NAMESPACE}
---
apiVersion: v1
kind: Service
metadata: {name: $service, namespace: $HPA_ADAPTER_NAMESPACE}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: $PROMETHEUS_ADAPTER_PORT}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  service: {name: $service, namespace: $HPA_ADAPTER_NAMESPACE, port: $PROMETHEUS_ADAPTER_PORT}
  caBundle: $(base64 -w0 "$KUBE_RUN/pki/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  wait_for 120 prometheus-adapter hpa_external_metrics_ready ||
    fail_with_log prometheus-adapter "$HPA_RUN/prometheus-adapter.log"

  log "hpa: starting kube-controller-manager (HPA sync $HPA_SYNC_PERIOD, downscale stabilization $HPA_DOWNSCALE_STABILIZATION)"
  # The deployment and replicaset controllers keep Deployment status.replicas real (pods stay
  # Pending: no scheduler or kubelet runs), which the HPA's AverageValue arithmetic reads.
  start_process kube-controller-manager "$HPA_RUN/kube-controller-manager.log" "$KUBE_CONTROLLER_MANAGER_BIN" \
    --kubeconfig "$KUBECONFIG_ADMIN" --authentication-kubeconfig "$KUBECONFIG_ADMIN" \
    --authorization-kubeconfig "$KUBECONFIG_ADMIN" \
    --secure-port "$KUBE_CONTROLLER_MANAGER_PORT" --bind-address "$STACK_HOST" --cert-dir "$HPA_RUN/cert-dir" \
    --leader-elect=false --controllers horizontalpodautoscaling,deployment,replicaset \
    --horizontal-pod-autoscaler-sync-period "$HPA_SYNC_PERIOD" \
    --horizontal-pod-autoscaler-downscale-stabilization "$HPA_DOWNSCALE_STABILIZATION"
  wait_for 120 kube-controller-manager hpa_controller_manager_ready ||
    fail_with_log kube-controller-manager "$HPA_RUN/kube-controller-manager.log"
}

hpa_down() {
  stop_process kube-controller-manager
  # An APIService whose server is gone makes API discovery report errors to every client.
  if process_alive prometheus-adapter && process_alive kube-apiserver; then
    kubectl_admin delete apiservice v1beta1.external.metrics.k8s.io --ignore-not-found >/dev/null 2>&1 || true
  fi
  stop_process prometheus-adapter
}

# hpa_running: exit status 0 when hpa is up and answering.
hpa_running() {
  process_alive kube-controller-manager && process_alive prometheus-adapter && hpa_external_metrics_ready 2>/dev/null
}

# hpa_endpoints: where hpa answers, for `stack status`.
hpa_endpoints() {
  echo "https://$STACK_HOST:$PROMETHEUS_ADAPTER_PORT (adapter), HPA sync $HPA_SYNC_PERIOD"
}
