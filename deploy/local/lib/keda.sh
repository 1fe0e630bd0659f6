# shellcheck shell=bash
# KEDA, a peer benches/peers measures segment-autoscaler against: its operator and metrics
# adapter built from the Go module proxy, in one image the single-node cluster runs, deployed
# from KEDA's own manifests (config/minimal: everything but the admission webhooks) with that
# image. Built and started only when named (`stack install keda`, `stack up keda` once the
# cluster runs): its build is large (about 370 modules) and CI does not need it.
#
# KEDA's go.mod has `replace` lines, so `go install ...@version` is refused: the downloaded
# module is built in a copy of its own directory, as its Makefile does, without cgo.
# Its metrics adapter serves external.metrics.k8s.io, as prometheus-adapter does for the hpa
# component (beside the kubernetes component's API server) and the prometheus-adapter component
# (on the cluster, so not at the same time as KEDA).

KEDA_VERSION=${KEDA_VERSION:-v2.20.2}
KEDA_HOME="$STACK_CACHE/keda-$KEDA_VERSION"
KEDA_RUN="$STACK_RUN/keda"
KEDA_NAMESPACE=keda
KEDA_MODULE=github.com/kedacore/keda/v2

keda_installed() { [[ -x $KEDA_HOME/bin/keda && -x $KEDA_HOME/bin/keda-adapter && -d $KEDA_HOME/config ]]; }

keda_install() {
  keda_installed && return 0
  command -v go >/dev/null || die "go is required to build KEDA"
  log "keda: building $KEDA_VERSION (operator and metrics adapter) from the Go module proxy"
  local module="$KEDA_HOME/src"
  rm -rf "$module" && mkdir -p "$KEDA_HOME/bin"
  (cd "$KEDA_HOME" && run_logged keda-download go mod download "$KEDA_MODULE@$KEDA_VERSION") ||
    die "downloading $KEDA_MODULE@$KEDA_VERSION failed"
  # A writable copy: the module cache is read-only and the build is the main module's.
  cp -r "$(go env GOMODCACHE)/$KEDA_MODULE@$KEDA_VERSION" "$module" && chmod -R u+w "$module"
  local ldflags="-X=$KEDA_MODULE/version.Version=${KEDA_VERSION#v}"
  (cd "$module" &&
    CGO_ENABLED=0 run_logged keda-build-operator go build -trimpath -ldflags "$ldflags" -o "$KEDA_HOME/bin/keda" ./cmd/operator &&
    CGO_ENABLED=0 run_logged keda-build-adapter go build -trimpath -ldflags "$ldflags" -o "$KEDA_HOME/bin/keda-adapter" ./cmd/adapter) ||
    die "building KEDA failed"
  rm -rf "$KEDA_HOME/config" && cp -r "$module/config" "$KEDA_HOME/config"
  cp "$module/LICENSE" "$KEDA_HOME/LICENSE"
  rm -rf "$module"
  log "keda: installed $KEDA_HOME/bin/keda and keda-adapter"
}

# keda_image: builds (once per version) and imports into the cluster the image of both
# binaries; prints its reference.
keda_image() {
  local ref tarball
  ref=$(images_build_local keda "$KEDA_VERSION" keda_stage_image)
  tarball=$(images_tarball keda "${ref##*:}" "$ref" true)
  cluster_import_image "$tarball"
  echo "$ref"
}
keda_stage_image() { cp "$KEDA_HOME/bin/keda" "$KEDA_HOME/bin/keda-adapter" "$1/"; }

keda_up() {
  keda_installed || die "keda is not installed: run '$0 install keda'"
  cluster_running || die "keda runs on the single-node cluster: run '$0 up cluster' first"
  if keda_running; then log "keda: already running"; return 0; fi
  ! prometheus_adapter_running || die "keda: prometheus-adapter serves external.metrics.k8s.io on the cluster: '$0 down prometheus-adapter' first"
  rm -rf "$KEDA_RUN" && mkdir -p "$KEDA_RUN"
  local ref
  ref=$(keda_image)
  # KEDA's manifests as released, with this image in place of ghcr.io's (never pulled).
  cp -r "$KEDA_HOME/config" "$KEDA_RUN/config"
  cat >"$KEDA_RUN/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [config/minimal]
images:
  - {name: ghcr.io/kedacore/keda, newName: ${ref%:*}, newTag: ${ref##*:}}
  - {name: ghcr.io/kedacore/keda-metrics-apiserver, newName: ${ref%:*}, newTag: ${ref##*:}}
patches:
  - target: {kind: Deployment, namespace: $KEDA_NAMESPACE}
    patch: |-
      - {op: replace, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
YAML
  log "keda: deploying $KEDA_VERSION (operator, metrics adapter) in namespace $KEDA_NAMESPACE"
  cluster_kubectl --request-timeout=60s apply --server-side -k "$KEDA_RUN" >"$KEDA_RUN/apply.log" 2>&1 ||
    fail_with_log "keda apply" "$KEDA_RUN/apply.log" || return 1
  local deployment
  for deployment in keda-operator keda-metrics-apiserver; do
    cluster_kubectl --request-timeout=30s -n "$KEDA_NAMESPACE" rollout status "deployment/$deployment" --timeout=300s \
      >>"$KEDA_RUN/apply.log" 2>&1 || {
      cluster_kubectl --request-timeout=30s -n "$KEDA_NAMESPACE" logs "deployment/$deployment" --tail 40 >&2 || true
      fail_with_log "keda $deployment" "$KEDA_RUN/apply.log"
      return 1
    }
  done
  wait_for 180 keda-metrics-adapter cluster_external_metrics_served ||
    fail_with_log "keda external metrics API" "$KEDA_RUN/apply.log"
}

keda_down() {
  cluster_running 2>/dev/null || return 0
  cluster_kubectl --request-timeout=30s get namespace "$KEDA_NAMESPACE" >/dev/null 2>&1 || return 0
  [[ -f $KEDA_RUN/kustomization.yaml ]] || return 0
  log "keda: deleting what it deployed"
  cluster_kubectl --request-timeout=60s delete -k "$KEDA_RUN" --ignore-not-found --wait=true --timeout=120s \
    >"$KEDA_RUN/delete.log" 2>&1 || log "keda: delete failed; see $KEDA_RUN/delete.log"
}

# keda_running: exit status 0 when KEDA's operator and adapter answer on the running cluster.
keda_running() {
  cluster_running 2>/dev/null && cluster_external_metrics_served 2>/dev/null &&
    cluster_kubectl --request-timeout=10s -n "$KEDA_NAMESPACE" get deployment keda-operator \
      -o jsonpath='{.status.availableReplicas}' 2>/dev/null | grep -qx 1
}

# keda_endpoints: where keda answers, for `stack status`.
keda_endpoints() { echo "namespace $KEDA_NAMESPACE on the cluster, $KEDA_VERSION"; }
