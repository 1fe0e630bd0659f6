# shellcheck shell=bash
# helm, the client users install the chart deploy/helm/segment-autoscaler with, built from the
# Go module proxy beside kubectl (part of the kubernetes component's install).

HELM_VERSION=${HELM_VERSION:-v4.3.2}
HELM_HOME="$STACK_CACHE/helm-$HELM_VERSION"
HELM_BIN="$HELM_HOME/bin/helm"

helm_installed() { [[ -x $HELM_BIN ]]; }

helm_install() {
  helm_installed && return 0
  command -v go >/dev/null || die "go is required to build helm"
  log "helm: building $HELM_VERSION from the Go module proxy (about 2 min)"
  # A module requiring the exact version: `go install pkg@version` would also ask the proxy for
  # the module's version list.
  local src="$HELM_HOME/src"
  rm -rf "$src" && mkdir -p "$src" "$HELM_HOME/bin"
  printf '%s\n' "module segment-autoscaler.local/helm-build" "" "go 1.26" "" \
    "require helm.sh/helm/v4 $HELM_VERSION" >"$src/go.mod"
  printf '%s\n' "//go:build tools" "" "package tools" "" \
    'import _ "helm.sh/helm/v4/cmd/helm"' >"$src/tools.go"
  (cd "$src" &&
    GOFLAGS=-mod=mod run_logged helm-mod-tidy go mod tidy &&
    run_logged helm-build go build -trimpath \
      -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
      -o "$HELM_BIN" helm.sh/helm/v4/cmd/helm) || die "helm build failed"
  log "helm: installed $HELM_BIN"
}
