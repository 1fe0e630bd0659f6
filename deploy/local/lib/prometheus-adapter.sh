# shellcheck shell=bash
# The HPA pipeline on the single-node cluster, a peer benches/peers measures segment-autoscaler
# against: prometheus-adapter in a pod (the binary the hpa component builds, in an image made
# here), serving the demo's Prometheus as External metrics through the aggregation layer to the
# cluster's own HPA controller (kube-controller-manager, at its defaults: 15 s sync, 300 s
# scale-down stabilization). As its own deploy manifests do: a ServiceAccount with delegated
# authentication and authorization, a self-signed serving certificate, an APIService that skips
# its verification. Started only when named, after the demo is deployed (it reads the demo's
# Prometheus). KEDA's adapter serves the same API group: one of the two at a time.

PROMETHEUS_ADAPTER_NAMESPACE=prometheus-adapter
PROMETHEUS_ADAPTER_RUN="$STACK_RUN/prometheus-adapter"
# The demo's Prometheus (deploy/k8s), in the cluster's DNS.
PROMETHEUS_ADAPTER_PROMETHEUS=${PROMETHEUS_ADAPTER_PROMETHEUS:-http://prometheus.segment-autoscaler-demo.svc:9090}

prometheus_adapter_installed() { [[ -x $PROMETHEUS_ADAPTER_BIN ]]; }
prometheus_adapter_install() { prometheus_adapter_build; }

# prometheus_adapter_image: builds (once per version) and imports into the cluster the image;
# prints its reference.
prometheus_adapter_image() {
  local ref tarball
  # Named by the build's cache (version and static), so another build makes another image.
  ref=$(images_build_local prometheus-adapter "${PROMETHEUS_ADAPTER_HOME##*/prometheus-adapter-}" prometheus_adapter_stage_image)
  tarball=$(images_tarball prometheus-adapter "${ref##*:}" "$ref" true)
  cluster_import_image "$tarball"
  echo "$ref"
}
prometheus_adapter_stage_image() { cp "$PROMETHEUS_ADAPTER_BIN" "$1/adapter"; }

prometheus_adapter_up() {
  prometheus_adapter_installed || die "prometheus-adapter is not installed: run '$0 install prometheus-adapter'"
  cluster_running || die "prometheus-adapter runs on the single-node cluster: run '$0 up cluster' first"
  if prometheus_adapter_running; then log "prometheus-adapter: already running"; return 0; fi
  ! keda_running || die "prometheus-adapter: KEDA serves external.metrics.k8s.io on the cluster: '$0 down keda' first"
  rm -rf "$PROMETHEUS_ADAPTER_RUN" && mkdir -p "$PROMETHEUS_ADAPTER_RUN"
  local ref ns=$PROMETHEUS_ADAPTER_NAMESPACE
  ref=$(prometheus_adapter_image)
  {
    cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus-adapter, namespace: $ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus-adapter:system:auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: prometheus-adapter, namespace: $ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: prometheus-adapter-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: prometheus-adapter, namespace: $ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: prometheus-adapter-resource-reader}
rules:
  - apiGroups: [""]
    resources: [namespaces, pods, services, nodes]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus-adapter-resource-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: prometheus-adapter-resource-reader}
subjects: [{kind: ServiceAccount, name: prometheus-adapter, namespace: $ns}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: prometheus-adapter, namespace: $ns}
data:
  config.yaml: |
YAML
    hpa_adapter_rules | sed 's/^/    /'
    cat <<YAML
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus-adapter, namespace: $ns}
spec:
  replicas: 1
  selector: {matchLabels: {app: prometheus-adapter}}
  template:
    metadata: {labels: {app: prometheus-adapter}}
    spec:
      serviceAccountName: prometheus-adapter
      containers:
        - name: adapter
          image: $ref
          imagePullPolicy: Never
          args:
            - --secure-port=6443
            - --cert-dir=/tmp/cert
            - --prometheus-url=$PROMETHEUS_ADAPTER_PROMETHEUS
            - --config=/etc/adapter/config.yaml
          ports: [{name: https, containerPort: 6443}]
          readinessProbe:
            httpGet: {path: /readyz, port: https, scheme: HTTPS}
            periodSeconds: 5
          volumeMounts:
            - {name: config, mountPath: /etc/adapter}
            - {name: cert, mountPath: /tmp/cert}
      volumes:
        - {name: config, configMap: {name: prometheus-adapter}}
        - {name: cert, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: prometheus-adapter, namespace: $ns}
spec:
  selector: {app: prometheus-adapter}
  ports: [{name: https, port: 443, targetPort: https}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  service: {name: prometheus-adapter, namespace: $ns, port: 443}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  } >"$PROMETHEUS_ADAPTER_RUN/manifest.yaml"
  log "prometheus-adapter: deploying $PROMETHEUS_ADAPTER_VERSION in namespace $ns (Prometheus $PROMETHEUS_ADAPTER_PROMETHEUS)"
  cluster_kubectl --request-timeout=60s apply -f "$PROMETHEUS_ADAPTER_RUN/manifest.yaml" >"$PROMETHEUS_ADAPTER_RUN/apply.log" 2>&1 ||
    fail_with_log "prometheus-adapter apply" "$PROMETHEUS_ADAPTER_RUN/apply.log" || return 1
  cluster_kubectl --request-timeout=30s -n "$ns" rollout status deployment/prometheus-adapter --timeout=300s \
    >>"$PROMETHEUS_ADAPTER_RUN/apply.log" 2>&1 || {
    cluster_kubectl --request-timeout=30s -n "$ns" logs deployment/prometheus-adapter --tail 40 >&2 || true
    fail_with_log "prometheus-adapter" "$PROMETHEUS_ADAPTER_RUN/apply.log"
    return 1
  }
  wait_for 180 prometheus-adapter cluster_external_metrics_served ||
    fail_with_log "prometheus-adapter external metrics API" "$PROMETHEUS_ADAPTER_RUN/apply.log"
}

prometheus_adapter_down() {
  cluster_running 2>/dev/null || return 0
  [[ -f $PROMETHEUS_ADAPTER_RUN/manifest.yaml ]] || return 0
  cluster_kubectl --request-timeout=30s get namespace "$PROMETHEUS_ADAPTER_NAMESPACE" >/dev/null 2>&1 || return 0
  log "prometheus-adapter: deleting what it deployed"
  cluster_kubectl --request-timeout=60s delete -f "$PROMETHEUS_ADAPTER_RUN/manifest.yaml" --ignore-not-found --wait=true --timeout=120s \
    >"$PROMETHEUS_ADAPTER_RUN/delete.log" 2>&1 || log "prometheus-adapter: delete failed; see $PROMETHEUS_ADAPTER_RUN/delete.log"
}

# prometheus_adapter_running: exit status 0 when the adapter serves the API on the running cluster.
prometheus_adapter_running() {
  cluster_running 2>/dev/null &&
    cluster_kubectl --request-timeout=10s -n "$PROMETHEUS_ADAPTER_NAMESPACE" get deployment prometheus-adapter \
      -o jsonpath='{.status.availableReplicas}' 2>/dev/null | grep -qx 1 &&
    cluster_external_metrics_served 2>/dev/null
}

prometheus_adapter_endpoints() { echo "namespace $PROMETHEUS_ADAPTER_NAMESPACE on the cluster, $PROMETHEUS_ADAPTER_VERSION"; }
